// The first step of curation: read the input pieces in order, hand blocks of rows to the worker threads
// (raw JSONL lines are parsed there, so the main thread only finds line ends), and take their results
// back in order: each row gets its index in input order, drops are counted, kept examples go on.
import { UserError, type Progress } from "@owntune/core";
import type { CurateConfig } from "./config.js";
import type { CurateCounters } from "./counters.js";
import type { InputPiece } from "./input-plan.js";
import type { ChunkResult, RowChunk } from "./processor.js";
import { readInput } from "./readers/index.js";
import { jsonlBlocks } from "./readers/jsonl-blocks.js";
import { detectSchema, type RowSchema } from "./records.js";

/** Rows per chunk sent to a worker: big enough to amortize messaging, small enough to balance. */
const CHUNK_ROWS = 64;
/** Bytes per chunk at most (long documents make smaller chunks). */
const CHUNK_BYTES = 256 * 1024;

/** An example the per-document steps kept, as the global steps see it. */
export interface ProcessedExample {
  /** Row index in input order (every row read counts, bad and dropped ones too). */
  id: number;
  input: number;
  file: string;
  line: number;
  ids: Int32Array;
  mask: Uint8Array;
  trained: number;
  fullTokens: number;
  truncated: boolean;
  boundaryMerges: number;
  exactKey?: string;
  bandKeys?: Float64Array;
  preview: string;
  example?: string;
}

export interface ReadStepOptions {
  cfg: CurateConfig;
  pieces: readonly InputPiece[];
  /** Each input's row schema (see detectSchemas). */
  schemas: readonly RowSchema[];
  runChunk: (chunk: RowChunk) => Promise<ChunkResult>;
  /** Chunks handed out and not yet taken back, at most. */
  maxInflight: number;
  counters: CurateCounters;
  progress: Progress;
}

/**
 * The schema of each input: as configured, else what its first readable row's fields suggest (rows
 * before it are malformed anyway). Shards all read the input's first rows, so they agree.
 */
export async function detectSchemas(cfg: CurateConfig, resolvePath: (p: string) => string): Promise<RowSchema[]> {
  const out: RowSchema[] = [];
  for (const input of cfg.inputs) {
    let schema: RowSchema | undefined = input.schema === "auto" ? undefined : input.schema;
    if (schema === undefined) {
      for await (const row of readInput(resolvePath(input.path), input.format, input.path)) {
        if (!row.value) continue;
        schema = detectSchema(row.value, input.fields);
        if (schema === undefined) {
          throw new UserError(`cannot tell the row layout from its fields (${Object.keys(row.value).slice(0, 8).join(", ")})`, {
            file: row.file,
            line: row.line,
            hint: `set "schema" (text, prompt_completion, alpaca, sharegpt, messages) and "fields" for this input`,
          });
        }
        break;
      }
    }
    out.push(schema ?? "text");
  }
  return out;
}

/** Reads every piece; calls `keep` with each kept example in input order. Returns the bytes read. */
export async function readStep(o: ReadStepOptions, keep: (ex: ProcessedExample) => void | Promise<void>): Promise<number> {
  const { cfg, counters } = o;
  let nextId = 0;
  let bytesRead = 0;
  const consume = async (chunk: RowChunk, res: ChunkResult) => {
    counters.addPii(res.pii);
    for (const r of res.results) {
      const id = nextId++;
      counters.rowsRead++;
      counters.inputRows[chunk.input]!++;
      if (r.status === "bad") {
        if (!cfg.skip_bad_rows) {
          throw new UserError(r.message, {
            file: r.file,
            line: r.line,
            field: r.field,
            hint: "fix the row, or pass --skip-bad-rows to skip such rows",
          });
        }
        counters.badRow({ file: r.file, line: r.line, field: r.field, message: r.message }, id);
      } else if (r.status === "dropped") {
        if (r.tokens !== undefined) counters.lengthsBefore.add(r.tokens);
        counters.drop(r.stage, r.reason, id, r.sample, `${r.file}:${r.line}`);
      } else {
        counters.lengthsBefore.add(r.fullTokens);
        await keep({
          id,
          input: chunk.input,
          file: r.file,
          line: r.line,
          ids: r.ids,
          mask: r.mask,
          trained: r.trained,
          fullTokens: r.fullTokens,
          truncated: r.truncated,
          boundaryMerges: r.boundaryMerges,
          exactKey: r.exactKey,
          bandKeys: r.bandKeys,
          preview: r.preview,
          example: r.example,
        });
      }
    }
  };

  const total = o.pieces.reduce((a, p) => a + (p.end - p.start), 0);
  o.progress.start(total, "curate", "B");
  const inflight: Array<{ chunk: RowChunk; result: Promise<ChunkResult> }> = [];
  const drainOne = async () => {
    const job = inflight.shift()!;
    await consume(job.chunk, await job.result);
    o.progress.update(bytesRead);
  };
  const send = async (chunk: RowChunk, bytes: number) => {
    const result = o.runChunk(chunk);
    // Mark rejections as handled now; they are rethrown in order by drainOne.
    result.catch(() => undefined);
    inflight.push({ chunk, result });
    bytesRead += bytes;
    while (inflight.length >= o.maxInflight) await drainOne();
  };
  try {
    for (const p of o.pieces) {
      const base = { input: p.input, schema: o.schemas[p.input]!, fields: cfg.inputs[p.input]!.fields };
      if (p.kind === "jsonl") {
        const blocks = jsonlBlocks(p.path, p.display, {
          start: p.start,
          end: p.end,
          gzip: p.gzip,
          maxBytes: CHUNK_BYTES,
          maxLines: CHUNK_ROWS,
        });
        for await (const b of blocks)
          await send({ ...base, kind: "jsonl", file: p.display, firstLine: b.firstLine, bytes: b.bytes }, b.bytes.length);
        continue;
      }
      let chunk: Extract<RowChunk, { kind: "rows" }> | undefined;
      let chunkBytes = 0;
      for await (const row of readInput(p.path, p.format, p.display)) {
        chunk ??= { ...base, kind: "rows", rows: [] };
        chunk.rows.push(row);
        chunkBytes += row.bytes;
        if (chunk.rows.length >= CHUNK_ROWS || chunkBytes >= CHUNK_BYTES) {
          await send(chunk, chunkBytes);
          chunk = undefined;
          chunkBytes = 0;
        }
      }
      if (chunk) await send(chunk, chunkBytes);
    }
    while (inflight.length > 0) await drainOne();
  } finally {
    o.progress.stop();
  }
  return bytesRead;
}
