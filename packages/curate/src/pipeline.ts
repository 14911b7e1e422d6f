// The curate pipeline, as named steps (datatrove-style), with one counter object for drops and samples:
//   read → per-example work (worker threads) → exact dedup → near dedup → split/weight → pack → write
// In memory while the kept examples fit `memoryBytes`; past that they spill to Parquet next to the
// output and the global steps run as SQL in DuckDB (merge.ts), the path `--shard`/`--merge` take,
// with the same bytes out. The dataset folder is written under a temporary name and renamed at the end.
import { defaultThreadCount, gemma3TokenizerWarning, silentProgress, UserError, withAtomicDir, type Progress } from "@owntune/model";
import type { CurateConfig } from "./config.js";
import { CurateCounters } from "./counters.js";
import { buildContaminationIndex } from "./dedup/decontaminate.js";
import { lshShape } from "./dedup/minhash.js";
import { exactDedupStep, nearDedupStep, SAMPLING_AT } from "./dedup-steps.js";
import type { Manifest } from "./manifest.js";
import { planPieces, type InputPiece } from "./input-plan.js";
import { planRows, planToRows } from "./pack.js";
import { Processor, type ChunkResult, type ProcessorSetup, type RowChunk } from "./processor.js";
import { detectSchemas, readStep, type ProcessedExample } from "./read-step.js";
import { readInput } from "./readers/index.js";
import { detectSchema, exampleText, toExample, type RowSchema } from "./records.js";
import { splitAndWeight, type SplitPlan } from "./split.js";
import { loadTokenizerFor } from "./tokenizer.js";
import { WorkerPool } from "./worker-pool.js";
import { describeInputs, writeDataset, type SplitData } from "./write-step.js";

export interface CurateRunOptions {
  /** The resolved curate config (zod output). */
  config: CurateConfig;
  /** The dataset directory to write (replaced only when the run succeeds). */
  outDir: string;
  /** Resolves paths written in the config (inputs, eval files). */
  resolvePath?: (p: string) => string;
  /** Tokenizer folder (a model dir); undefined uses the default Gemma tokenizer. */
  tokenizerDir?: string;
  /** Seed used where the config has none. */
  seed?: number;
  progress?: Progress;
  log?: (line: string) => void;
}

export interface CurateSummary {
  outDir: string;
  manifest: Manifest;
  /** Bytes of input read. */
  bytesRead: number;
  seconds: number;
}

/** The config with its seed resolved. */
export function withSeed(config: CurateConfig, fallback: number | undefined): CurateConfig & { seed: number } {
  return { ...config, seed: config.seed ?? fallback ?? 0 };
}

/** Checks what the schema cannot: the LSH shape fits the permutations. */
export function checkConfig(cfg: CurateConfig): void {
  const near = cfg.dedup.near;
  if (!near) return;
  const { bands, rows } = lshShape(near);
  if (bands * rows > near.num_perm) throw new UserError(`bands × rows = ${bands * rows} exceeds num_perm ${near.num_perm}`, { field: "dedup.near" });
}

/** Evaluation n-grams for decontamination, read through the same readers as the inputs. */
export async function contaminationIndex(cfg: CurateConfig, resolvePath: (p: string) => string): Promise<Float64Array> {
  if (!cfg.decontaminate) return new Float64Array(0);
  const texts: string[] = [];
  for (const f of cfg.decontaminate.files) {
    let schema: RowSchema | undefined;
    for await (const row of readInput(resolvePath(f), "auto", f)) {
      if (!row.value) throw new UserError(row.error ?? "unreadable row", { file: row.file, line: row.line });
      schema ??= detectSchema(row.value, cfg.inputs[0]!.fields) ?? "text";
      try {
        texts.push(exampleText(toExample(row.value, schema, cfg.inputs[0]!.fields)));
      } catch {
        texts.push(Object.values(row.value).filter((v) => typeof v === "string").join("\n"));
      }
    }
  }
  return Float64Array.from(buildContaminationIndex(texts, cfg.decontaminate.ngram));
}

/** The per-document work of a run: every piece read and processed, each kept example passed to `keep`. */
export async function processPieces(
  cfg: CurateConfig,
  pieces: readonly InputPiece[],
  resolvePath: (p: string) => string,
  tokenizerDir: string | undefined,
  counters: CurateCounters,
  progress: Progress,
  keep: (ex: ProcessedExample) => void | Promise<void>,
  setupExtra: Pick<ProcessorSetup, "keepExamples"> = {},
): Promise<number> {
  const schemas = await detectSchemas(cfg, resolvePath);
  const setup: ProcessorSetup = { config: cfg, contamination: await contaminationIndex(cfg, resolvePath), ...setupExtra };
  const workerCount = cfg.workers ?? defaultThreadCount();
  let pool: WorkerPool | undefined;
  try {
    let runChunk: (c: RowChunk) => Promise<ChunkResult>;
    if (workerCount > 0) {
      const p = (pool = new WorkerPool(workerCount, setup, tokenizerDir));
      runChunk = (c) => p.run(c, c.kind === "jsonl" ? [c.bytes.buffer as ArrayBuffer] : []);
    } else {
      const local = await Processor.create(setup, await loadTokenizerFor(tokenizerDir));
      runChunk = async (c) => local.processChunk(c);
    }
    return await readStep({ cfg, pieces, schemas, runChunk, maxInflight: Math.max(2, workerCount * 3), counters, progress }, keep);
  } finally {
    await pool?.close();
  }
}

/** Runs the whole pipeline and writes the dataset directory. */
export async function curate(opts: CurateRunOptions): Promise<CurateSummary> {
  const t0 = performance.now();
  const progress = opts.progress ?? silentProgress;
  const resolvePath = opts.resolvePath ?? ((p: string) => p);
  const cfg = withSeed(opts.config, opts.seed);
  checkConfig(cfg);
  const pieces = await planPieces(cfg, resolvePath);
  const tokenizer = await loadTokenizerFor(opts.tokenizerDir);
  const tokenizerNote = gemma3TokenizerWarning(tokenizer);
  if (tokenizerNote) opts.log?.(`tokenizer: ${tokenizerNote}`);

  // Step 1–2: read, and the per-example work in the workers.
  const counters = new CurateCounters(cfg.inputs.length);
  const docs: ProcessedExample[] = [];
  const bytesRead = await processPieces(cfg, pieces, resolvePath, opts.tokenizerDir, counters, progress, (ex) => {
    docs.push(ex);
  });

  // Steps 3–4: exact and near dedup.
  const kept = nearDedupStep(exactDedupStep(docs, counters), cfg, counters);
  docs.length = 0;

  // Step 5: split and weight.
  const plan = splitAndWeight({ count: kept.length, id: (r) => kept[r]!.id, input: (r) => kept[r]!.input }, cfg, cfg.seed);
  countSampling(counters, plan, (r) => kept[r]!.preview);

  // Steps 6–7: pack and write.
  const padId = tokenizer.padId ?? 0;
  const splitData = (ranks: Uint32Array, salt: number): SplitData => {
    const lengths = Int32Array.from(ranks, (r) => kept[r]!.ids.length);
    const packPlan = planRows(lengths, cfg.seq_len, cfg.packing, { shuffleSeed: cfg.seed ^ salt });
    return {
      plan: packPlan,
      lengths,
      trained: Int32Array.from(ranks, (r) => kept[r]!.trained),
      rows: () => planToRows(packPlan, (i) => kept[ranks[i]!]!, cfg.seq_len, padId),
    };
  };
  const manifest = await withAtomicDir(opts.outDir, async (tmp) =>
    writeDataset(tmp, {
      cfg,
      seed: cfg.seed,
      padId,
      tokenizer: tokenizerIdentity(tokenizer.identity),
      inputs: await describeInputs(cfg, resolvePath),
      counters,
      examplesKept: kept.length,
      splits: { train: splitData(plan.train, TRAIN_SALT), val: splitData(plan.val, VAL_SALT) },
    }),
  );
  return { outDir: opts.outDir, manifest, bytesRead, seconds: (performance.now() - t0) / 1000 };
}

/** Salts of each split's row-order seed (seed ^ salt). */
export const TRAIN_SALT = 0x7a11;
export const VAL_SALT = 0x7a12;

/** Counts the examples the weights sampled out, with the first few as samples. */
export function countSampling(counters: CurateCounters, plan: SplitPlan, previewOf: (rank: number) => string): void {
  counters.dropMany("sampling", "weight_below_1", plan.sampledOut, SAMPLING_AT);
  for (const r of plan.sampledOutFirst) counters.sample("sampling", { reason: "weight_below_1", text: previewOf(r) });
}

/** The tokenizer as manifest.json records it. */
export function tokenizerIdentity(id: { source: string; sha256: string; configSha256: string | null; vocabSize: number }): Manifest["tokenizer"] {
  return { source: id.source, sha256: id.sha256, config_sha256: id.configSha256, vocab_size: id.vocabSize };
}
