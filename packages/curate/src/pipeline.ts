// The curate pipeline: read inputs → (workers) normalize, filter, redact, decontaminate, format,
// token limits → (in order) exact and near dedup → split, weight, pack → Arrow shards, manifest.json
// and report.html, written into the output folder atomically.
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { defaultThreadCount, gemma3TokenizerWarning, silentProgress, UserError, withAtomicDir, writeFileAtomic, type Progress } from "@owntune/model";
import { writeShard } from "./arrow-dataset.js";
import type { CurateConfig } from "./config.js";
import { buildContaminationIndex } from "./dedup/decontaminate.js";
import { LshClusters, lshParams } from "./dedup/minhash.js";
import { FILTER_ORDER } from "./filters/index.js";
import { shuffleInPlace, uniform } from "./hash.js";
import { checkInputExists, hashInput } from "./input-hash.js";
import { DATASET_COLUMNS, DATASET_FORMAT, DATASET_FORMAT_VERSION, type Manifest, type SplitSummary } from "./manifest.js";
import { bestFitDecreasing, buildRow, type PackItem } from "./pack.js";
import { Processor, type ChunkResult, type ProcessorSetup, type RowChunk } from "./processor.js";
import { readInput } from "./readers/index.js";
import { detectSchema, exampleText, toExample, type RowSchema } from "./records.js";
import { renderReport, type DroppedSample, type ReportData } from "./report.js";
import { loadTokenizerFor } from "./tokenizer.js";
import { WorkerPool } from "./worker-pool.js";

/** Rows per chunk sent to a worker: big enough to amortize messaging, small enough to balance. */
const CHUNK_ROWS = 64;
/** Bytes per chunk at most (long documents make smaller chunks). */
const CHUNK_BYTES = 256 * 1024;
/** Target shard size: shards are read whole by the dataset reader. */
const SHARD_BYTES = 128 * 1024 * 1024;
/** Dropped examples shown per filter in the report. */
const SAMPLES_PER_STAGE = 3;
/** Bad rows listed in the report. */
const BAD_ROW_SAMPLES = 20;

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

interface Doc {
  id: number;
  input: number;
  ids: Int32Array;
  mask: Uint8Array;
  preview: string;
}

/** Runs the whole pipeline and writes the dataset directory. */
export async function curate(opts: CurateRunOptions): Promise<CurateSummary> {
  const t0 = performance.now();
  const progress = opts.progress ?? silentProgress;
  const resolvePath = opts.resolvePath ?? ((p: string) => p);
  const cfg: CurateConfig = { ...opts.config, seed: opts.config.seed ?? opts.seed ?? 0 };
  const seed = cfg.seed!;
  // Every input named, checked before any work: a missing one is reported at once, not after minutes.
  for (const p of [...cfg.inputs.map((i) => i.path), ...(cfg.decontaminate?.files ?? [])]) await checkInputExists(resolvePath(p), p);
  const tokenizer = await loadTokenizerFor(opts.tokenizerDir);
  const tokenizerNote = gemma3TokenizerWarning(tokenizer);
  if (tokenizerNote) opts.log?.(`tokenizer: ${tokenizerNote}`);

  // Evaluation n-grams for decontamination, read through the same readers.
  let contamination = new Float64Array(0);
  if (cfg.decontaminate) {
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
    contamination = Float64Array.from(buildContaminationIndex(texts, cfg.decontaminate.ngram));
  }

  const setup: ProcessorSetup = { config: cfg, contamination };
  const workerCount = cfg.workers ?? defaultThreadCount();

  // Central, in-order state.
  const drops: Record<string, Record<string, number>> = {};
  const samples: Record<string, DroppedSample[]> = {};
  const badRows: Array<{ file: string; line: number; field?: string; message: string }> = [];
  const pii: Record<string, number> = {};
  const exactSeen = new Set<string>();
  const near = cfg.dedup.near;
  const lshShape = near ? (near.bands && near.rows ? { bands: near.bands, rows: near.rows } : lshParams(near.threshold, near.num_perm)) : undefined;
  if (lshShape && lshShape.bands * lshShape.rows > (near?.num_perm ?? 0)) {
    throw new UserError(`bands × rows = ${lshShape.bands * lshShape.rows} exceeds num_perm ${near?.num_perm}`, { field: "dedup.near" });
  }
  const lsh = lshShape ? new LshClusters(lshShape.bands, lshShape.rows) : undefined;
  const docs: Doc[] = [];
  const lengthsBefore: number[] = [];
  let rowsRead = 0;
  let truncated = 0;
  let boundaryMerges = 0;
  const inputRows: number[] = cfg.inputs.map(() => 0);

  const countDrop = (stage: string, reason: string, sample?: string, where?: string) => {
    const s = (drops[stage] ??= {});
    s[reason] = (s[reason] ?? 0) + 1;
    const list = (samples[stage] ??= []);
    if (sample !== undefined && list.length < SAMPLES_PER_STAGE) list.push({ reason, text: sample, where });
  };

  const consume = (chunk: RowChunk, res: ChunkResult) => {
    for (const [k, v] of Object.entries(res.pii)) pii[k] = (pii[k] ?? 0) + (v ?? 0);
    res.results.forEach((r, i) => {
      const id = res.firstId + i;
      const row = chunk.rows[i]!;
      const where = `${row.file}:${row.line}`;
      if (r.status === "bad") {
        if (!cfg.skip_bad_rows) {
          throw new UserError(r.message, { file: r.file, line: r.line, field: r.field, hint: "fix the row, or pass --skip-bad-rows to skip such rows" });
        }
        countDrop("bad_rows", r.field ? `bad_field:${r.field.replace(/\[\d+\]/g, "[]")}` : "malformed");
        if (badRows.length < BAD_ROW_SAMPLES) badRows.push({ file: r.file, line: r.line, field: r.field, message: r.message });
        return;
      }
      if (r.status === "dropped") {
        if (r.tokens !== undefined) lengthsBefore.push(r.tokens);
        countDrop(r.stage, r.reason, r.sample, where);
        return;
      }
      lengthsBefore.push(r.fullTokens);
      if (r.exactKey !== undefined) {
        if (exactSeen.has(r.exactKey)) return countDrop("dedup_exact", "exact_duplicate", r.preview, where);
        exactSeen.add(r.exactKey);
      }
      if (r.truncated) truncated++;
      boundaryMerges += r.boundaryMerges;
      if (lsh && r.signature) lsh.add(id, r.signature);
      docs.push({ id, input: chunk.input, ids: r.ids, mask: r.mask, preview: r.preview });
    });
  };

  // Read every input in order, in chunks; keep a bounded number of chunks in flight.
  const totalBytes = (await Promise.all(cfg.inputs.map((i) => hashInput(resolvePath(i.path))))).reduce((a, h) => a + h.bytes, 0);
  const local = workerCount > 0 ? undefined : await Processor.create(setup, tokenizer);
  // The pool's threads keep the process alive: from here on, every way out closes it (the finally below).
  const pool = workerCount > 0 ? new WorkerPool(workerCount, setup, opts.tokenizerDir) : undefined;
  const runChunk = (c: RowChunk): Promise<ChunkResult> => (pool ? pool.run(c) : Promise.resolve(local!.processChunk(c)));
  progress.start(totalBytes, "curate", "B");
  let bytesRead = 0;
  const inflight: Array<{ chunk: RowChunk; result: Promise<ChunkResult> }> = [];
  const maxInflight = Math.max(2, workerCount * 3);
  const drainOne = async () => {
    const job = inflight.shift()!;
    consume(job.chunk, await job.result);
    progress.update(bytesRead);
  };
  try {
    let nextId = 0;
    for (let k = 0; k < cfg.inputs.length; k++) {
      const input = cfg.inputs[k]!;
      let schema: RowSchema | undefined = input.schema === "auto" ? undefined : input.schema;
      let chunk: RowChunk | undefined;
      let chunkBytes = 0;
      const flush = async () => {
        if (!chunk || chunk.rows.length === 0) return;
        inflight.push({ chunk, result: runChunk(chunk) });
        // Mark rejections as handled now; they are rethrown in order by drainOne.
        inflight[inflight.length - 1]!.result.catch(() => undefined);
        chunk = undefined;
        chunkBytes = 0;
        while (inflight.length >= maxInflight) await drainOne();
      };
      for await (const row of readInput(resolvePath(input.path), input.format, input.path)) {
        rowsRead++;
        inputRows[k]!++;
        bytesRead += row.bytes;
        if (schema === undefined && row.value) {
          schema = detectSchema(row.value, input.fields);
          if (schema === undefined) {
            throw new UserError(
              `cannot tell the row layout from its fields (${Object.keys(row.value).slice(0, 8).join(", ")})`,
              { file: row.file, line: row.line, hint: `set "schema" (text, prompt_completion, alpaca, sharegpt, messages) and "fields" for this input` },
            );
          }
        }
        chunk ??= { firstId: nextId, input: k, schema: schema ?? "text", fields: input.fields, rows: [] };
        if (schema !== undefined) chunk.schema = schema;
        chunk.rows.push(row);
        nextId++;
        chunkBytes += row.bytes;
        if (chunk.rows.length >= CHUNK_ROWS || chunkBytes >= CHUNK_BYTES) await flush();
      }
      await flush();
    }
    while (inflight.length > 0) await drainOne();
  } finally {
    progress.stop();
    await pool?.close();
  }

  // Near-dedup decisions: the first member of each LSH cluster stays.
  let kept = docs;
  if (lsh) {
    const byId = new Map(docs.map((d) => [d.id, d]));
    kept = [];
    for (const d of docs) {
      if (lsh.isKept(d.id)) kept.push(d);
      else {
        const rep = byId.get(lsh.representative(d.id));
        countDrop("dedup_near", "near_duplicate", d.preview, rep ? `near-duplicate of: ${rep.preview.slice(0, 120)}` : undefined);
      }
    }
  }

  // Split (seeded), then weights: floor(w) copies plus one more with probability frac(w).
  const order = shuffleInPlace(kept.slice(), seed);
  const nVal = cfg.val_fraction > 0 && order.length >= 2 ? Math.min(order.length - 1, Math.max(1, Math.round(cfg.val_fraction * order.length))) : 0;
  const copiesOf = (d: Doc) => {
    const w = cfg.inputs[d.input]!.weight;
    const whole = Math.floor(w);
    return whole + (uniform(seed, d.id, 0x5eed) < w - whole ? 1 : 0);
  };
  const val: Doc[] = [];
  const train: Doc[] = [];
  order.forEach((d, i) => {
    const c = copiesOf(d);
    if (c === 0) return countDrop("sampling", "weight_below_1", d.preview);
    if (i < nVal) val.push(d);
    else for (let j = 0; j < c; j++) train.push(d);
  });

  if (train.length === 0) throw emptyDatasetError(rowsRead, drops);

  const padId = tokenizer.padId ?? 0;
  const rowsPerShard = cfg.rows_per_shard ?? Math.max(1, Math.floor(SHARD_BYTES / (cfg.seq_len * 4 * 4)));
  const lengthsAfter = [...train, ...val].map((d) => d.ids.length);

  const outcome = await withAtomicDir(opts.outDir, async (tmp) => {
    const splits = {} as Record<"train" | "val", SplitSummary>;
    for (const [name, items] of [["train", train], ["val", val]] as const) {
      splits[name] = await writeSplit(tmp, name, items, cfg, padId, rowsPerShard, seed);
    }
    const inputs = await Promise.all(
      cfg.inputs.map(async (input, k) => {
        const h = await hashInput(resolvePath(input.path));
        const fmt = input.format === "auto" ? ((await stat(resolvePath(input.path))).isDirectory() ? "folder" : "auto") : input.format;
        return { path: input.path, format: fmt, schema: input.schema, weight: input.weight, sha256: h.sha256, bytes: h.bytes, rows: inputRows[k]! };
      }),
    );
    const orderedDrops: Record<string, Record<string, number>> = {};
    for (const stage of ["bad_rows", ...FILTER_ORDER, "decontaminate", "tokens", "dedup_exact", "dedup_near", "sampling"]) {
      if (drops[stage]) orderedDrops[stage] = drops[stage]!;
    }
    const manifest: Manifest = {
      format: DATASET_FORMAT,
      format_version: DATASET_FORMAT_VERSION,
      seq_len: cfg.seq_len,
      packing: cfg.packing,
      pad_id: padId,
      columns: { ...DATASET_COLUMNS },
      seed,
      tokenizer: {
        source: tokenizer.identity.source,
        sha256: tokenizer.identity.sha256,
        config_sha256: tokenizer.identity.configSha256,
        vocab_size: tokenizer.identity.vocabSize,
      },
      inputs,
      // `workers` changes speed, never output: it stays out, so manifests match across machines.
      config: JSON.parse(JSON.stringify({ ...cfg, workers: undefined })) as Record<string, unknown>,
      splits,
      counts: {
        rows_read: rowsRead,
        bad_rows: Object.values(drops.bad_rows ?? {}).reduce((a, b) => a + b, 0),
        examples_kept: kept.length,
        train_examples: train.length,
        val_examples: val.length,
        truncated,
        template_boundary_merges: boundaryMerges,
      },
      drops: orderedDrops,
      pii,
    };
    const report: ReportData = { manifest, samples, badRows, lengthsBefore, lengthsAfter };
    await writeFileAtomic(join(tmp, "report.html"), renderReport(report));
    await writeFileAtomic(join(tmp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    return manifest;
  });
  return { outDir: opts.outDir, manifest: outcome, bytesRead, seconds: (performance.now() - t0) / 1000 };
}

/** Packs one split's examples, shuffles the rows (seeded) and writes its shards. */
async function writeSplit(
  dir: string,
  name: "train" | "val",
  items: readonly Doc[],
  cfg: CurateConfig,
  padId: number,
  rowsPerShard: number,
  seed: number,
): Promise<SplitSummary> {
  const packItems: PackItem[] = items.map((d) => ({ ids: d.ids, mask: d.mask }));
  const bins = cfg.packing ? bestFitDecreasing(packItems.map((p) => p.ids.length), cfg.seq_len) : packItems.map((_, i) => [i]);
  shuffleInPlace(bins, seed ^ (name === "train" ? 0x7a11 : 0x7a12));
  let tokens = 0;
  let trained = 0;
  for (const p of packItems) {
    tokens += p.ids.length;
    for (const m of p.mask) trained += m;
  }
  const shards: SplitSummary["shards"] = [];
  const nShards = Math.max(1, Math.ceil(bins.length / rowsPerShard));
  for (let s = 0; s < nShards; s++) {
    const file = `${name}-${String(s).padStart(5, "0")}.arrow`;
    const rows = bins.slice(s * rowsPerShard, (s + 1) * rowsPerShard).map((b) => buildRow(b.map((i) => packItems[i]!), cfg.seq_len, padId));
    const { bytes, sha256 } = await writeShard(join(dir, file), rows, cfg.seq_len);
    shards.push({ file, rows: rows.length, bytes, sha256 });
  }
  return {
    shards,
    rows: bins.length,
    examples: items.length,
    tokens,
    trained_tokens: trained,
    packing_efficiency: bins.length === 0 ? 0 : tokens / (bins.length * cfg.seq_len),
  };
}

/** No training example survived: say where they went (which stage dropped the most), not just "0 rows". */
function emptyDatasetError(rowsRead: number, drops: Record<string, Record<string, number>>): UserError {
  const byStage = Object.entries(drops)
    .map(([stage, reasons]) => ({ stage, n: Object.values(reasons).reduce((a, b) => a + b, 0), reasons }))
    .filter((d) => d.n > 0)
    .sort((a, b) => b.n - a.n);
  const list = byStage.map((d) => `${d.stage} ${d.n} (${Object.entries(d.reasons).sort((a, b) => b[1] - a[1]).slice(0, 3).map(([r, n]) => `${r} ${n}`).join(", ")})`).join("; ");
  const top = byStage[0];
  return new UserError(`no training examples: all ${rowsRead} row(s) read were dropped${top ? ` — ${list}` : ""}`, {
    field: top && (FILTER_ORDER as readonly string[]).includes(top.stage) ? `filters.${top.stage}` : undefined,
    hint: top ? `most went to ${top.stage}: loosen it, or check the input` : "check the input",
  });
}
