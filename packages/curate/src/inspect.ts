// `owntune inspect DIR` for a curated dataset directory: manifest summary plus a check that every
// shard opens with the documented schema and the row counts the manifest records.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readShard } from "./arrow-dataset.js";
import { readManifest, type Manifest } from "./manifest.js";

/** True when `dir` looks like a curated dataset directory (its manifest then says whether it is one). */
export function isDatasetDir(dir: string): boolean {
  return existsSync(join(dir, "manifest.json"));
}

export interface DatasetInfo {
  kind: "dataset";
  dir: string;
  format_version: number;
  seq_len: number;
  packing: boolean;
  tokenizer: Manifest["tokenizer"];
  splits: Record<
    "train" | "val",
    { rows: number; examples: number; tokens: number; trained_tokens: number; packing_efficiency: number; shards: number }
  >;
  counts: Record<string, number>;
  drops: Record<string, number>;
  /** Per split: real (non-padding) tokens counted in the shards, which must equal the manifest's. */
  verified: Record<"train" | "val", { rows: number; tokens: number }>;
}

/** Reads the manifest and every shard; throws UserError if any of it is inconsistent. */
export async function inspectDataset(dir: string): Promise<DatasetInfo> {
  const m = await readManifest(dir);
  const verified = { train: { rows: 0, tokens: 0 }, val: { rows: 0, tokens: 0 } };
  for (const split of ["train", "val"] as const) {
    for (const shard of m.splits[split].shards) {
      const data = await readShard(join(dir, shard.file), m.seq_len, shard);
      verified[split].rows += data.rows;
      for (const s of data.columns.segment_ids) if (s !== 0) verified[split].tokens++;
    }
  }
  const summarize = (s: Manifest["splits"]["train"]) => ({
    rows: s.rows,
    examples: s.examples,
    tokens: s.tokens,
    trained_tokens: s.trained_tokens,
    packing_efficiency: s.packing_efficiency,
    shards: s.shards.length,
  });
  const drops: Record<string, number> = {};
  for (const [stage, reasons] of Object.entries(m.drops)) drops[stage] = Object.values(reasons).reduce((a, b) => a + b, 0);
  return {
    kind: "dataset",
    dir,
    format_version: m.format_version,
    seq_len: m.seq_len,
    packing: m.packing,
    tokenizer: m.tokenizer,
    splits: { train: summarize(m.splits.train), val: summarize(m.splits.val) },
    counts: m.counts,
    drops,
    verified,
  };
}

/** Human-readable lines for the inspect command. */
export function formatDatasetInfo(info: DatasetInfo): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `dataset ${info.dir} (format ${info.format_version})`,
    `  seq_len ${info.seq_len}, ${info.packing ? "packed (best-fit-decreasing)" : "one example per row (padded)"}, tokenizer ${info.tokenizer.source} ${info.tokenizer.sha256.slice(0, 12)}`,
  ];
  for (const split of ["train", "val"] as const) {
    const s = info.splits[split];
    lines.push(
      `  ${split}: ${s.rows} rows in ${s.shards} shard(s), ${s.examples} examples, ${s.tokens} tokens (${pct(s.tokens ? s.trained_tokens / s.tokens : 0)} trained), packing efficiency ${pct(s.packing_efficiency)}`,
    );
  }
  lines.push(`  read ${info.counts.rows_read ?? 0} rows, kept ${info.counts.examples_kept ?? 0}`);
  for (const [stage, n] of Object.entries(info.drops)) lines.push(`    dropped by ${stage}: ${n}`);
  return lines.join("\n");
}
