// The curate pipeline, as named steps (datatrove-style), with one counter object for drops and samples:
//   read → per-example work (worker threads) → exact dedup → near dedup → split/weight → pack → write
// In memory while the kept examples fit `memoryBytes`; past that they spill to Parquet next to the
// output and the global steps run as SQL in DuckDB (merge.ts), the path `--shard`/`--merge` take,
// with the same bytes out. The dataset folder is written under a temporary name and renamed at the end.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { defaultThreadCount, formatBytes, silentProgress, UserError, withAtomicDir, withTempDir, type Progress } from "@owntune/core";
import type { CurateConfig } from "./config.js";
import { CurateCounters, emptyDatasetError } from "./counters.js";
import { buildContaminationIndex } from "./dedup/decontaminate.js";
import { lshShape } from "./dedup/minhash.js";
import { exactDedupStep, nearDedupStep, SAMPLING_AT } from "./dedup-steps.js";
import type { Manifest } from "./manifest.js";
import { openEngine, type Engine } from "./duckdb.js";
import { planPieces, shardPieces, type InputPiece, type ShardSpec } from "./input-plan.js";
import { mergeParts, readParts } from "./merge.js";
import { HfParquetWriter } from "./hf-export.js";
import { PART_FORMAT, PART_FORMAT_VERSION, PartWriter, type PartMeta } from "./part.js";
import { planRows, planToRows } from "./pack.js";
import { Processor, type ChunkResult, type ProcessorSetup, type RowChunk } from "./processor.js";
import { detectSchemas, readStep, type ProcessedExample } from "./read-step.js";
import { readInput } from "./readers/index.js";
import { detectSchema, exampleText, toExample, type RowSchema } from "./records.js";
import { splitAndWeight, TRAIN_SALT, VAL_SALT, type SplitPlan } from "./split.js";
import { loadTokenizerFor, tokenizerInfo, type TokenizerInfo } from "./tokenizer.js";
import { WorkerPool } from "./worker-pool.js";
import { describeInputs, writeDataset, type DatasetContent, type SplitData } from "./write-step.js";

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
  /** Bytes of kept examples held in memory before spilling to Parquet + DuckDB (default 512 MiB). */
  memoryBytes?: number;
  /** "hf-parquet" adds the examples as Hugging Face datasets Parquet (data/*.parquet) to the dataset. */
  format?: OutputFormat;
}

export type OutputFormat = "arrow" | "hf-parquet";

export interface CurateSummary {
  outDir: string;
  manifest: Manifest;
  /** Bytes of input read. */
  bytesRead: number;
  seconds: number;
}

export interface ShardSummary {
  outDir: string;
  rowsRead: number;
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
  if (bands * rows > near.num_perm)
    throw new UserError(`bands × rows = ${bands * rows} exceeds num_perm ${near.num_perm}`, { field: "dedup.near" });
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
        texts.push(
          Object.values(row.value)
            .filter((v) => typeof v === "string")
            .join("\n"),
        );
      }
    }
  }
  return Float64Array.from(buildContaminationIndex(texts, cfg.decontaminate.ngram));
}

/**
 * The per-document work of a run: every piece read and processed, each kept example passed to `keep`.
 * Returns the bytes read and the tokenizer's identity (from a worker: the main thread loads none).
 */
export async function processPieces(
  cfg: CurateConfig,
  pieces: readonly InputPiece[],
  resolvePath: (p: string) => string,
  tokenizerDir: string | undefined,
  counters: CurateCounters,
  progress: Progress,
  keep: (ex: ProcessedExample) => void | Promise<void>,
  log?: (line: string) => void,
  keepExamples = false,
): Promise<{ bytesRead: number; tokenizer: TokenizerInfo }> {
  const schemas = await detectSchemas(cfg, resolvePath);
  const setup: ProcessorSetup = { config: cfg, contamination: await contaminationIndex(cfg, resolvePath), keepExamples };
  const workerCount = cfg.workers ?? defaultThreadCount();
  let pool: WorkerPool | undefined;
  try {
    let runChunk: (c: RowChunk) => Promise<ChunkResult>;
    let info: Promise<TokenizerInfo>;
    if (workerCount > 0) {
      const p = (pool = new WorkerPool(workerCount, setup, tokenizerDir));
      runChunk = (c) => p.process(c);
      info = p.tokenizerInfo();
    } else {
      const tok = await loadTokenizerFor(tokenizerDir);
      const local = await Processor.create(setup, tok);
      runChunk = async (c) => local.processChunk(c);
      info = Promise.resolve(tokenizerInfo(tok));
    }
    info.then(
      (i) => i.note && log?.(`tokenizer: ${i.note}`),
      () => undefined,
    );
    const bytesRead = await readStep(
      { cfg, pieces, schemas, runChunk, maxInflight: Math.max(2, workerCount * 3), counters, progress },
      keep,
    );
    return { bytesRead, tokenizer: await info };
  } finally {
    await pool?.close();
  }
}

/** Bytes of kept examples held in memory before a run spills them to Parquet (OWNTUNE_CURATE_MEMORY_MB overrides). */
const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;

function memoryBudget(opts: CurateRunOptions): number {
  if (opts.memoryBytes !== undefined) return opts.memoryBytes;
  const env = Number(process.env.OWNTUNE_CURATE_MEMORY_MB);
  return Number.isFinite(env) && env > 0 ? env * 1024 * 1024 : DEFAULT_MEMORY_BYTES;
}

/** What an example costs in memory, roughly: its arrays, its strings and the object. */
const exampleBytes = (ex: ProcessedExample) =>
  ex.ids.byteLength + ex.mask.byteLength + 2 * (ex.preview.length + (ex.example?.length ?? 0)) + (ex.bandKeys?.byteLength ?? 0) + 200;

/** The config as manifest.json and shard.json record it: `workers` changes speed, never output. */
const recordedConfig = (cfg: CurateConfig) => JSON.parse(JSON.stringify({ ...cfg, workers: undefined })) as Record<string, unknown>;

/** DuckDB's threads: one per core, as the workers. */
const engineThreads = (cfg: CurateConfig) => Math.max(1, cfg.workers ?? defaultThreadCount());

/** Runs the whole pipeline and writes the dataset directory. */
export async function curate(opts: CurateRunOptions): Promise<CurateSummary> {
  const t0 = performance.now();
  const progress = opts.progress ?? silentProgress;
  const resolvePath = opts.resolvePath ?? ((p: string) => p);
  const cfg = withSeed(opts.config, opts.seed);
  checkConfig(cfg);
  const pieces = await planPieces(cfg, resolvePath);
  const budget = memoryBudget(opts);
  const hf = opts.format === "hf-parquet";

  // Scratch space next to the output, for Parquet runs and DuckDB's own spill files if memory runs out.
  return withTempDir(`${opts.outDir}-spill`, async (scratch) => {
    let engine: Engine | undefined;
    try {
      // Steps 1–2: read, and the per-example work in the workers; kept examples stay in memory while they fit.
      const counters = new CurateCounters(cfg.inputs.length);
      let docs: ProcessedExample[] = [];
      let held = 0;
      let spill: PartWriter | undefined;
      const partDir = join(scratch, "part-0");
      const { bytesRead, tokenizer } = await processPieces(
        cfg,
        pieces,
        resolvePath,
        opts.tokenizerDir,
        counters,
        progress,
        async (ex) => {
          if (spill) return spill.add(ex);
          docs.push(ex);
          held += exampleBytes(ex);
          if (held <= budget) return;
          opts.log?.(`curate: kept examples passed ${formatBytes(budget, "MiB", 0)}; spilling them to ${scratch} and merging with DuckDB`);
          engine = await openEngine(join(scratch, "duckdb"), engineThreads(cfg), "a curate run larger than memory");
          await mkdir(partDir);
          spill = await PartWriter.open(engine, partDir, 0);
          for (const d of docs) await spill.add(d);
          docs = [];
        },
        opts.log,
        hf,
      );
      const { identity, padId } = tokenizer;
      const inputs = await describeInputs(cfg, resolvePath);

      if (spill && engine) {
        const meta = partMeta(cfg, { index: 0, count: 1 }, identity, padId, counters, bytesRead, inputs, hf);
        await spill.finish(meta);
        const eng = engine;
        const { manifest } = await withAtomicDir(opts.outDir, async (outTmp) =>
          mergeParts({ cfg, parts: [{ dir: partDir, meta }], engine: eng, outTmp, progress, log: opts.log, hfParquet: hf }),
        );
        return { outDir: opts.outDir, manifest, bytesRead, seconds: (performance.now() - t0) / 1000 };
      }

      // Steps 3–7 in memory: exact dedup, near dedup, split/weight, pack, write.
      const openHfEngine = async () => (engine ??= await openEngine(join(scratch, "duckdb"), engineThreads(cfg), "--format hf-parquet"));
      const manifest = await withAtomicDir(opts.outDir, (tmp) =>
        inMemorySteps(tmp, docs.splice(0), { cfg, padId, tokenizer: identity, inputs, counters, hfEngine: hf ? openHfEngine : undefined }),
      );
      return { outDir: opts.outDir, manifest, bytesRead, seconds: (performance.now() - t0) / 1000 };
    } finally {
      (engine as Engine | undefined)?.close();
    }
  });
}

/** Steps 3–7 on examples held in memory (input order), writing the dataset into `dir`. */
async function inMemorySteps(
  dir: string,
  docs: ProcessedExample[],
  o: Pick<DatasetContent, "inputs" | "counters" | "tokenizer" | "padId"> & {
    cfg: CurateConfig & { seed: number };
    hfEngine?: () => Promise<Engine>;
  },
): Promise<Manifest> {
  const { cfg, counters, padId } = o;
  const kept = nearDedupStep(exactDedupStep(docs, counters), cfg, counters);
  docs.length = 0;
  const plan = splitAndWeight({ count: kept.length, id: (r) => kept[r]!.id, input: (r) => kept[r]!.input }, cfg, cfg.seed);
  countSampling(counters, plan, (r) => kept[r]!.preview);
  if (plan.train.length === 0) throw emptyDatasetError(counters);
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
  const hfEngine = o.hfEngine;
  return writeDataset(dir, {
    ...o,
    seed: cfg.seed,
    examplesKept: kept.length,
    splits: { train: splitData(plan.train, TRAIN_SALT), val: splitData(plan.val, VAL_SALT) },
    hfExport: hfEngine
      ? async (out) => {
          const w = await HfParquetWriter.open(await hfEngine(), out, { train: plan.train.length, validation: plan.val.length });
          for (const [split, ranks] of [
            ["train", plan.train],
            ["validation", plan.val],
          ] as const) {
            for (const r of ranks) await w.add(split, kept[r]!.example!, kept[r]!.ids, kept[r]!.mask);
          }
          return w.finish();
        }
      : undefined,
  });
}

function partMeta(
  cfg: CurateConfig,
  shard: ShardSpec,
  tokenizer: Manifest["tokenizer"],
  padId: number,
  counters: CurateCounters,
  bytesRead: number,
  inputs: DatasetContent["inputs"] | undefined,
  keepExamples: boolean,
): PartMeta {
  return {
    format: PART_FORMAT,
    format_version: PART_FORMAT_VERSION,
    shard: shard.index,
    shards: shard.count,
    config: recordedConfig(cfg),
    tokenizer,
    pad_id: padId,
    keep_examples: keepExamples,
    inputs,
    counters: counters.toJSON(),
    bytes_read: bytesRead,
  };
}

/**
 * `owntune curate --shard i/N --out PARTS/i`: the per-document steps on this shard's 1/N of the input
 * bytes, written as a part (Parquet + shard.json) for `curateMerge`.
 */
export async function curateShard(opts: CurateRunOptions & { shard: ShardSpec }): Promise<ShardSummary> {
  const t0 = performance.now();
  const progress = opts.progress ?? silentProgress;
  const resolvePath = opts.resolvePath ?? ((p: string) => p);
  const cfg = withSeed(opts.config, opts.seed);
  checkConfig(cfg);
  const pieces = shardPieces(await planPieces(cfg, resolvePath), opts.shard);
  const counters = new CurateCounters(cfg.inputs.length);
  let bytesRead = 0;
  await withAtomicDir(opts.outDir, (partTmp) =>
    withTempDir(`${opts.outDir}-spill`, async (scratch) => {
      const engine = await openEngine(scratch, engineThreads(cfg), "--shard");
      try {
        const writer = await PartWriter.open(engine, partTmp, opts.shard.index);
        const hf = opts.format === "hf-parquet";
        const done = await processPieces(
          cfg,
          pieces,
          resolvePath,
          opts.tokenizerDir,
          counters,
          progress,
          (ex) => writer.add(ex),
          opts.log,
          hf,
        );
        bytesRead = done.bytesRead;
        // Shard 0 records the inputs' hashes for the manifest (whole files: no other shard reads all of them).
        const inputs = opts.shard.index === 0 ? await describeInputs(cfg, resolvePath) : undefined;
        await writer.finish(partMeta(cfg, opts.shard, done.tokenizer.identity, done.tokenizer.padId, counters, bytesRead, inputs, hf));
      } finally {
        engine.close();
      }
    }),
  );
  return { outDir: opts.outDir, rowsRead: counters.rowsRead, bytesRead, seconds: (performance.now() - t0) / 1000 };
}

/**
 * `owntune curate --merge PARTS --out DATASET`: the global steps over every shard's part, as SQL in
 * DuckDB, writing the dataset one process would have written from the same config.
 */
export async function curateMerge(opts: Omit<CurateRunOptions, "tokenizerDir"> & { partsDir: string }): Promise<CurateSummary> {
  const t0 = performance.now();
  const progress = opts.progress ?? silentProgress;
  const cfg = withSeed(opts.config, opts.seed);
  checkConfig(cfg);
  const parts = await readParts(opts.partsDir);
  const shardJson = join(parts[0]!.dir, "shard.json");
  if (JSON.stringify(recordedConfig(cfg)) !== JSON.stringify(parts[0]!.meta.config)) {
    throw new UserError(`the shards were curated with another config than this merge's`, {
      file: shardJson,
      hint: "merge with the config the shards ran with",
    });
  }
  const hf = opts.format === "hf-parquet";
  if (hf && !parts[0]!.meta.keep_examples) {
    throw new UserError("the shards were run without --format hf-parquet, so they hold no example texts to export", {
      file: shardJson,
      hint: "run the shards with --format hf-parquet too",
    });
  }
  const manifest = await withAtomicDir(opts.outDir, (outTmp) =>
    withTempDir(`${opts.outDir}-spill`, async (scratch) => {
      const engine = await openEngine(scratch, engineThreads(cfg), "--merge");
      try {
        return (await mergeParts({ cfg, parts, engine, outTmp, progress, log: opts.log, hfParquet: hf })).manifest;
      } finally {
        engine.close();
      }
    }),
  );
  const bytesRead = parts.reduce((a, p) => a + p.meta.bytes_read, 0);
  return { outDir: opts.outDir, manifest, bytesRead, seconds: (performance.now() - t0) / 1000 };
}

/** Counts the examples the weights sampled out, with the first few as samples. */
export function countSampling(counters: CurateCounters, plan: SplitPlan, previewOf: (rank: number) => string): void {
  counters.dropMany("sampling", "weight_below_1", plan.sampledOut, SAMPLING_AT);
  for (const r of plan.sampledOutFirst) counters.sample("sampling", { reason: "weight_below_1", text: previewOf(r) });
}
