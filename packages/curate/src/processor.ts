// The per-example work, run in worker threads (or in the main thread with workers: 0): JSON parsing of
// raw JSONL lines, schema mapping, normalization, text filters, PII redaction, decontamination, dedup
// keys and MinHash band keys, formatting with loss masks, and token-length limits. Pure given its
// setup, so results do not depend on scheduling.
import type { CurateConfig } from "./config.js";
import { isContaminated } from "./dedup/decontaminate.js";
import { exactKey } from "./dedup/exact.js";
import { bandKeys, lshShape, minhashSignature, permutationSeeds, shingleHashes } from "./dedup/minhash.js";
import { buildFilters, type TextFilter } from "./filters/index.js";
import { formatExample, type FormatTokenizer } from "./format.js";
import { makeNormalizer } from "./normalize.js";
import { makeRedactor, type PiiCounts } from "./pii.js";
import { dedupKeyText, exampleText, mapExampleText, RowError, toExample, type Example, type RowSchema } from "./records.js";
import { parseJsonLine } from "./readers/jsonl.js";
import type { SourceRow } from "./readers/source-row.js";
import type { FieldNames } from "./config.js";

/** Characters of an example kept for the report's dropped-example samples. */
export const SAMPLE_CHARS = 600;

/** Characters of each kept example remembered, to show near-duplicates that dedup drops later. */
export const PREVIEW_CHARS = 240;

/** Rows of one input sent to a worker: already parsed (Parquet, Arrow, CSV, text), or raw JSONL lines. */
export type RowChunk = {
  input: number;
  schema: RowSchema;
  fields: FieldNames;
} & (
  | { kind: "rows"; rows: SourceRow[] }
  | {
      kind: "jsonl";
      file: string;
      /** Line number of the first line in `bytes`. */
      firstLine: number;
      /** Whole lines, each ending in "\n" except perhaps the file's last (transferred, not copied). */
      bytes: Uint8Array;
    }
);

/** Where a row came from, for the report's samples. */
interface RowPlace {
  file: string;
  line: number;
}

export type RowResult = RowPlace &
  (
    | { status: "bad"; field?: string; message: string }
    | { status: "dropped"; stage: string; reason: string; sample: string; tokens?: number }
    | {
        status: "kept";
        ids: Int32Array;
        mask: Uint8Array;
        /** Tokens with loss_mask 1. */
        trained: number;
        /** Tokens before truncation (for the "before" histogram). */
        fullTokens: number;
        truncated: boolean;
        exactKey?: string;
        /** MinHash LSH band keys (near dedup on). */
        bandKeys?: Float64Array;
        preview: string;
        boundaryMerges: number;
        /** The example as trained on (JSON), when the output keeps it (hf-parquet). */
        example?: string;
      }
  );

export interface ChunkResult {
  /** One per row read (blank JSONL lines are no rows), in input order. */
  results: RowResult[];
  pii: PiiCounts;
}

export interface ProcessorSetup {
  config: CurateConfig;
  /** Decontamination n-gram hashes (empty when not configured). */
  contamination: Float64Array;
  /** Keep each kept example's final form (for a Hugging Face Parquet export). */
  keepExamples?: boolean;
}

const clip = (s: string) => (s.length > SAMPLE_CHARS ? s.slice(0, SAMPLE_CHARS) + "…" : s);

export class Processor {
  private constructor(
    private readonly cfg: CurateConfig,
    private readonly tok: FormatTokenizer,
    private readonly filters: TextFilter[],
    private readonly contamination: Set<number>,
    private readonly seeds: Uint32Array | undefined,
    private readonly lsh: { bands: number; rows: number } | undefined,
    private readonly keepExamples: boolean,
  ) {}

  static async create(setup: ProcessorSetup, tok: FormatTokenizer): Promise<Processor> {
    const cfg = setup.config;
    const near = cfg.dedup.near;
    const seed = cfg.seed ?? 0;
    return new Processor(
      cfg,
      tok,
      await buildFilters(cfg.filters),
      new Set(setup.contamination),
      near ? permutationSeeds(near.num_perm, seed) : undefined,
      near ? lshShape(near) : undefined,
      setup.keepExamples ?? false,
    );
  }

  processChunk(chunk: RowChunk): ChunkResult {
    const pii: PiiCounts = {};
    const normalize = makeNormalizer(this.cfg.normalize);
    const redact = this.cfg.pii ? makeRedactor(this.cfg.pii) : undefined;
    const rows = chunk.kind === "rows" ? chunk.rows : jsonlRows(chunk.bytes, chunk.file, chunk.firstLine);
    const results = rows.map((row) => this.processRow(row, chunk, normalize, redact, pii));
    return { results, pii };
  }

  private processRow(
    row: SourceRow,
    chunk: RowChunk,
    normalize: (s: string) => string,
    redact: ((s: string, c: PiiCounts) => string) | undefined,
    pii: PiiCounts,
  ): RowResult {
    const { file, line } = row;
    if (row.value === undefined) return { status: "bad", file, line, message: row.error ?? "unreadable row" };
    let ex: Example;
    try {
      ex = mapExampleText(toExample(row.value, chunk.schema, chunk.fields), normalize);
    } catch (e) {
      if (e instanceof RowError) return { status: "bad", file, line, field: e.field, message: e.message };
      throw e;
    }
    // Text filters, in their fixed order; C4 may rewrite plain text (drop lines).
    for (const f of this.filters) {
      const text = exampleText(ex);
      const r = f.apply(text, ex.kind === "text");
      if (!r.keep) return { status: "dropped", file, line, stage: f.name, reason: r.reason, sample: clip(text) };
      if (r.text !== undefined && ex.kind === "text") ex = { kind: "text", text: r.text };
    }
    if (redact) {
      const counts: PiiCounts = {};
      ex = mapExampleText(ex, (s) => redact(s, counts));
      for (const [k, v] of Object.entries(counts)) pii[k as keyof PiiCounts] = (pii[k as keyof PiiCounts] ?? 0) + v;
    }
    const text = exampleText(ex);
    const dc = this.cfg.decontaminate;
    if (dc && this.contamination.size > 0 && isContaminated(text, this.contamination, dc.ngram)) {
      return { status: "dropped", file, line, stage: "decontaminate", reason: `shares_${dc.ngram}_gram`, sample: clip(text) };
    }
    let formatted;
    try {
      formatted = formatExample(this.tok, ex, { promptFormat: this.cfg.prompt_format });
    } catch (e) {
      if (e instanceof RowError) return { status: "bad", file, line, field: e.field, message: e.message };
      throw e;
    }
    let { ids, mask } = formatted;
    const fullTokens = ids.length;
    const len = this.cfg.filters.length;
    const drop = (reason: string): RowResult => ({
      status: "dropped",
      file,
      line,
      stage: "tokens",
      reason,
      sample: clip(text),
      tokens: fullTokens,
    });
    if (len?.min_tokens !== undefined && fullTokens < len.min_tokens) return drop("too_few_tokens");
    if (len?.max_tokens !== undefined && fullTokens > len.max_tokens) return drop("too_many_tokens");
    let truncated = false;
    if (fullTokens > this.cfg.seq_len) {
      if (this.cfg.overlong === "drop") return drop("longer_than_seq_len");
      ids = ids.slice(0, this.cfg.seq_len);
      mask = mask.slice(0, this.cfg.seq_len);
      truncated = true;
      if (!mask.some((m) => m === 1)) return drop("nothing_trained_after_truncation");
    }
    let trained = 0;
    for (let t = 0; t < mask.length; t++) trained += mask[t]!;
    const near = this.cfg.dedup.near;
    return {
      status: "kept",
      file,
      line,
      ids,
      mask,
      trained,
      fullTokens,
      truncated,
      exactKey: this.cfg.dedup.exact ? exactKey(dedupKeyText(ex)) : undefined,
      bandKeys:
        near && this.seeds && this.lsh
          ? bandKeys(minhashSignature(shingleHashes(text, near.unit, near.ngram), this.seeds), this.lsh.bands, this.lsh.rows)
          : undefined,
      preview: text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) + "…" : text,
      boundaryMerges: formatted.boundaryMerges,
      example: this.keepExamples ? JSON.stringify(ex) : undefined,
    };
  }
}

/** The rows of a block of raw JSONL lines (blank lines are no rows), parsed as readJsonl does. */
function jsonlRows(bytes: Uint8Array, file: string, firstLine: number): SourceRow[] {
  const rows: SourceRow[] = [];
  let start = 0;
  let line = firstLine;
  while (start < bytes.length) {
    let nl = bytes.indexOf(0x0a, start);
    if (nl < 0) nl = bytes.length;
    const end = nl > start && bytes[nl - 1] === 0x0d ? nl - 1 : nl;
    const row = parseJsonLine(bytes.subarray(start, end), file, line);
    if (row) rows.push(row);
    line++;
    start = nl + 1;
  }
  return rows;
}

/** Buffers to transfer (not copy) when posting a chunk result from a worker. */
export function transferList(result: ChunkResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const r of result.results) {
    if (r.status !== "kept") continue;
    out.push(r.ids.buffer as ArrayBuffer, r.mask.buffer as ArrayBuffer);
    if (r.bandKeys) out.push(r.bandKeys.buffer as ArrayBuffer);
  }
  return out;
}
