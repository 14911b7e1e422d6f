// The last step: each split's packed rows into Arrow shards (rows_per_shard each), then manifest.json
// and report.html, all inside the dataset's temporary folder (renamed into place by the caller).
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "@owntune/core";
import { ShardWriter } from "./arrow-dataset.js";
import type { CurateConfig } from "./config.js";
import type { CurateCounters } from "./counters.js";
import { hashInput } from "./input-hash.js";
import { DATASET_COLUMNS, DATASET_FORMAT, DATASET_FORMAT_VERSION, type Manifest, type SplitSummary } from "./manifest.js";
import type { HfSplit } from "./hf-export.js";
import type { PackedRow, RowPlan } from "./pack.js";
import { renderReport } from "./report.js";

/** Target shard size: shards are read whole by the dataset reader. */
const SHARD_BYTES = 128 * 1024 * 1024;

export type SplitName = "train" | "val";

/** One split ready to write: its row plan, its examples' sizes, and its rows in plan order. */
export interface SplitData {
  plan: RowPlan;
  /** Tokens of each example of the split (the plan's items). */
  lengths: Int32Array;
  /** Tokens with loss_mask 1, per example. */
  trained: Int32Array;
  rows: () => AsyncIterable<PackedRow> | Iterable<PackedRow>;
}

export interface DatasetContent {
  cfg: CurateConfig;
  seed: number;
  padId: number;
  tokenizer: Manifest["tokenizer"];
  /** manifest.json's inputs (without per-input row counts, which come from the counters). */
  inputs: Array<Omit<Manifest["inputs"][number], "rows">>;
  counters: CurateCounters;
  /** Examples left after dedup (before split and weights). */
  examplesKept: number;
  splits: Record<SplitName, SplitData>;
  /** Writes the Hugging Face Parquet export into the folder (with `--format hf-parquet`); returns its files. */
  hfExport?: (dir: string) => Promise<Record<HfSplit, string[]>>;
}

/** Rows per shard: the config's, else about SHARD_BYTES of int32 columns. */
export function rowsPerShard(cfg: CurateConfig): number {
  return cfg.rows_per_shard ?? Math.max(1, Math.floor(SHARD_BYTES / (cfg.seq_len * 4 * 4)));
}

/** The inputs as manifest.json describes them: content hash, size and resolved format. */
export async function describeInputs(cfg: CurateConfig, resolvePath: (p: string) => string): Promise<DatasetContent["inputs"]> {
  return Promise.all(
    cfg.inputs.map(async (input) => {
      const h = await hashInput(resolvePath(input.path));
      const fmt = input.format === "auto" ? ((await stat(resolvePath(input.path))).isDirectory() ? "folder" : "auto") : input.format;
      return { path: input.path, format: fmt, schema: input.schema, weight: input.weight, sha256: h.sha256, bytes: h.bytes };
    }),
  );
}

async function writeSplit(dir: string, name: SplitName, split: SplitData, cfg: CurateConfig): Promise<SplitSummary> {
  const perShard = rowsPerShard(cfg);
  const rows = split.plan.rowStart.length - 1;
  const shards: SplitSummary["shards"] = [];
  const nShards = Math.max(1, Math.ceil(rows / perShard));
  let writer: ShardWriter | undefined;
  const file = (s: number) => `${name}-${String(s).padStart(5, "0")}.arrow`;
  const close = async () => {
    const { bytes, sha256 } = await writer!.close();
    shards.push({ file: file(shards.length), rows: writer!.rows, bytes, sha256 });
    writer = undefined;
  };
  try {
    for await (const row of split.rows()) {
      writer ??= await ShardWriter.open(join(dir, file(shards.length)), cfg.seq_len);
      writer.add(row);
      if (writer.rows === perShard) await close();
    }
    while (shards.length < nShards) {
      writer ??= await ShardWriter.open(join(dir, file(shards.length)), cfg.seq_len);
      await close();
    }
  } catch (e) {
    await writer?.abort();
    throw e;
  }
  let tokens = 0;
  let trained = 0;
  for (let i = 0; i < split.lengths.length; i++) {
    tokens += split.lengths[i]!;
    trained += split.trained[i]!;
  }
  return {
    shards,
    rows,
    examples: split.lengths.length,
    tokens,
    trained_tokens: trained,
    packing_efficiency: rows === 0 ? 0 : tokens / (rows * cfg.seq_len),
  };
}

/** Writes the shards, manifest.json and report.html into `dir`; returns the manifest. */
export async function writeDataset(dir: string, d: DatasetContent): Promise<Manifest> {
  const { cfg, counters } = d;
  const splits = {} as Record<SplitName, SplitSummary>;
  for (const name of ["train", "val"] as const) splits[name] = await writeSplit(dir, name, d.splits[name], cfg);
  for (const name of ["train", "val"] as const) for (const len of d.splits[name].lengths) counters.lengthsAfter.add(len);
  const hf = d.hfExport ? await d.hfExport(dir) : undefined;
  const manifest: Manifest = {
    format: DATASET_FORMAT,
    format_version: DATASET_FORMAT_VERSION,
    seq_len: cfg.seq_len,
    packing: cfg.packing,
    pad_id: d.padId,
    columns: { ...DATASET_COLUMNS },
    seed: d.seed,
    tokenizer: d.tokenizer,
    inputs: d.inputs.map((input, k) => ({ ...input, rows: counters.inputRows[k]! })),
    // `workers` changes speed, never output: it stays out, so manifests match across machines.
    config: JSON.parse(JSON.stringify({ ...cfg, workers: undefined })) as Record<string, unknown>,
    splits,
    counts: {
      rows_read: counters.rowsRead,
      bad_rows: Object.values(counters.drops.bad_rows ?? {}).reduce((a, b) => a + b, 0),
      examples_kept: d.examplesKept,
      train_examples: d.splits.train.lengths.length,
      val_examples: d.splits.val.lengths.length,
      truncated: counters.truncated,
      template_boundary_merges: counters.boundaryMerges,
    },
    drops: counters.orderedDrops(),
    pii: counters.pii,
    ...(hf ? { hf_parquet: hf } : {}),
  };
  const report = {
    manifest,
    samples: counters.orderedSamples(),
    badRows: counters.badRows,
    lengthsBefore: counters.lengthsBefore,
    lengthsAfter: counters.lengthsAfter,
  };
  await writeFileAtomic(join(dir, "report.html"), renderReport(report));
  await writeFileAtomic(join(dir, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}
