// The per-example work, run in worker threads (or in the main thread with workers: 0): schema mapping,
// normalization, text filters, PII redaction, decontamination, dedup keys/signatures, formatting with
// loss masks, and token-length limits. Pure given its setup, so results do not depend on scheduling.
import type { CurateConfig } from "./config.js";
import { isContaminated } from "./dedup/decontaminate.js";
import { exactKey } from "./dedup/exact.js";
import { minhashSignature, permutationSeeds, shingleHashes } from "./dedup/minhash.js";
import { buildFilters, type TextFilter } from "./filters/index.js";
import { formatExample, type FormatTokenizer } from "./format.js";
import { makeNormalizer } from "./normalize.js";
import { makeRedactor, type PiiCounts } from "./pii.js";
import { dedupKeyText, exampleText, mapExampleText, RowError, toExample, type Example, type RowSchema } from "./records.js";
import type { SourceRow } from "./readers/source-row.js";
import type { FieldNames } from "./config.js";

/** Characters of an example kept for the report's dropped-example samples. */
export const SAMPLE_CHARS = 600;

/** Characters of each kept example remembered, to show near-duplicates that dedup drops later. */
export const PREVIEW_CHARS = 240;

/** A chunk of rows of one input, sent to a worker. */
export interface RowChunk {
  /** Global index of the first row (input order across all inputs). */
  firstId: number;
  input: number;
  schema: RowSchema;
  fields: FieldNames;
  rows: SourceRow[];
}

export type RowResult =
  | { status: "bad"; file: string; line: number; field?: string; message: string }
  | { status: "dropped"; stage: string; reason: string; sample: string; tokens?: number }
  | {
      status: "kept";
      ids: Int32Array;
      mask: Uint8Array;
      /** Tokens before truncation (for the "before" histogram). */
      fullTokens: number;
      truncated: boolean;
      exactKey?: string;
      signature?: Uint32Array;
      preview: string;
      chars: number;
      boundaryMerges: number;
    };

export interface ChunkResult {
  firstId: number;
  results: RowResult[];
  pii: PiiCounts;
}

export interface ProcessorSetup {
  config: CurateConfig;
  /** Decontamination n-gram hashes (empty when not configured). */
  contamination: Float64Array;
}

const clip = (s: string) => (s.length > SAMPLE_CHARS ? s.slice(0, SAMPLE_CHARS) + "…" : s);

export class Processor {
  private constructor(
    private readonly cfg: CurateConfig,
    private readonly tok: FormatTokenizer,
    private readonly filters: TextFilter[],
    private readonly contamination: Set<number>,
    private readonly seeds: Uint32Array | undefined,
  ) {}

  static async create(setup: ProcessorSetup, tok: FormatTokenizer): Promise<Processor> {
    const cfg = setup.config;
    const near = cfg.dedup.near;
    const seed = cfg.seed ?? 0;
    return new Processor(cfg, tok, await buildFilters(cfg.filters), new Set(setup.contamination), near ? permutationSeeds(near.num_perm, seed) : undefined);
  }

  processChunk(chunk: RowChunk): ChunkResult {
    const pii: PiiCounts = {};
    const normalize = makeNormalizer(this.cfg.normalize);
    const redact = this.cfg.pii ? makeRedactor(this.cfg.pii) : undefined;
    const results = chunk.rows.map((row) => this.processRow(row, chunk, normalize, redact, pii));
    return { firstId: chunk.firstId, results, pii };
  }

  private processRow(
    row: SourceRow,
    chunk: RowChunk,
    normalize: (s: string) => string,
    redact: ((s: string, c: PiiCounts) => string) | undefined,
    pii: PiiCounts,
  ): RowResult {
    if (row.value === undefined) return { status: "bad", file: row.file, line: row.line, message: row.error ?? "unreadable row" };
    let ex: Example;
    try {
      ex = mapExampleText(toExample(row.value, chunk.schema, chunk.fields), normalize);
    } catch (e) {
      if (e instanceof RowError) return { status: "bad", file: row.file, line: row.line, field: e.field, message: e.message };
      throw e;
    }
    // Text filters, in their fixed order; C4 may rewrite plain text (drop lines).
    for (const f of this.filters) {
      const text = exampleText(ex);
      const r = f.apply(text, ex.kind === "text");
      if (!r.keep) return { status: "dropped", stage: f.name, reason: r.reason, sample: clip(text) };
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
      return { status: "dropped", stage: "decontaminate", reason: `shares_${dc.ngram}_gram`, sample: clip(text) };
    }
    let formatted;
    try {
      formatted = formatExample(this.tok, ex, { promptFormat: this.cfg.prompt_format });
    } catch (e) {
      if (e instanceof RowError) return { status: "bad", file: row.file, line: row.line, field: e.field, message: e.message };
      throw e;
    }
    let { ids, mask } = formatted;
    const fullTokens = ids.length;
    const len = this.cfg.filters.length;
    if (len?.min_tokens !== undefined && fullTokens < len.min_tokens) return { status: "dropped", stage: "tokens", reason: "too_few_tokens", sample: clip(text), tokens: fullTokens };
    if (len?.max_tokens !== undefined && fullTokens > len.max_tokens) return { status: "dropped", stage: "tokens", reason: "too_many_tokens", sample: clip(text), tokens: fullTokens };
    let truncated = false;
    if (fullTokens > this.cfg.seq_len) {
      if (this.cfg.overlong === "drop") return { status: "dropped", stage: "tokens", reason: "longer_than_seq_len", sample: clip(text), tokens: fullTokens };
      ids = ids.slice(0, this.cfg.seq_len);
      mask = mask.slice(0, this.cfg.seq_len);
      truncated = true;
      if (!mask.some((m) => m === 1)) return { status: "dropped", stage: "tokens", reason: "nothing_trained_after_truncation", sample: clip(text), tokens: fullTokens };
    }
    const near = this.cfg.dedup.near;
    return {
      status: "kept",
      ids,
      mask,
      fullTokens,
      truncated,
      exactKey: this.cfg.dedup.exact ? exactKey(dedupKeyText(ex)) : undefined,
      signature: near && this.seeds ? minhashSignature(shingleHashes(text, near.unit, near.ngram), this.seeds) : undefined,
      preview: text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) + "…" : text,
      chars: text.length,
      boundaryMerges: formatted.boundaryMerges,
    };
  }
}

/** Buffers to transfer (not copy) when posting a chunk result from a worker. */
export function transferList(result: ChunkResult): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const r of result.results) {
    if (r.status !== "kept") continue;
    out.push(r.ids.buffer as ArrayBuffer, r.mask.buffer as ArrayBuffer);
    if (r.signature) out.push(r.signature.buffer as ArrayBuffer);
  }
  return out;
}
