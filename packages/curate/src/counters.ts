// One counter object for a curate run, as datatrove's pipeline stats: rows read, drops per stage and
// reason with a few samples each, malformed rows, PII found, and token-length tallies for the report.
// Shards keep their own and the merge adds them up in shard order, so every figure (and every sample,
// the first ones in input order) matches a single-process run.
import { UserError } from "@owntune/core";
import { FILTER_ORDER } from "./filters/index.js";
import type { DroppedSample } from "./report.js";

/** Dropped examples shown per stage in the report. */
export const SAMPLES_PER_STAGE = 3;
/** Malformed rows listed in the report. */
export const BAD_ROW_SAMPLES = 20;

/** The order stages appear in manifest.json's `drops` and in the report's funnel. */
export const STAGE_ORDER = ["bad_rows", ...FILTER_ORDER, "decontaminate", "tokens", "dedup_exact", "dedup_near", "sampling"] as const;

export interface BadRow {
  file: string;
  line: number;
  field?: string;
  message: string;
}

/** How many examples have each token length: a histogram with exact values, at a few entries per distinct length. */
export class LengthTally {
  readonly counts = new Map<number, number>();
  total = 0;

  add(length: number, times = 1): void {
    this.counts.set(length, (this.counts.get(length) ?? 0) + times);
    this.total += times;
  }

  addAll(other: LengthTally): void {
    for (const [len, n] of other.counts) this.add(len, n);
  }

  toJSON(): Array<[number, number]> {
    return [...this.counts].sort((a, b) => a[0] - b[0]);
  }

  static fromJSON(pairs: ReadonlyArray<readonly [number, number]>): LengthTally {
    const t = new LengthTally();
    for (const [len, n] of pairs) t.add(len, n);
    return t;
  }
}

/** The counters' plain form, as shards store them in shard.json. */
export interface CountersJson {
  rowsRead: number;
  inputRows: number[];
  drops: Record<string, Record<string, number>>;
  /** Row index (in this part of the input) of each stage's first drop. */
  firstDrop: Record<string, number>;
  samples: Record<string, DroppedSample[]>;
  badRows: BadRow[];
  pii: Record<string, number>;
  lengthsBefore: Array<[number, number]>;
}

export class CurateCounters {
  rowsRead = 0;
  readonly inputRows: number[];
  readonly drops: Record<string, Record<string, number>> = {};
  readonly samples: Record<string, DroppedSample[]> = {};
  /** Where each stage first dropped a row (a row index; the global steps come after every row). */
  readonly firstDrop: Record<string, number> = {};
  readonly badRows: BadRow[] = [];
  readonly pii: Record<string, number> = {};
  /** Token counts of every formatted example, before token limits, truncation and dedup. */
  readonly lengthsBefore = new LengthTally();
  /** Token counts of the examples in the dataset (train copies included). */
  readonly lengthsAfter = new LengthTally();
  /** Examples truncated to seq_len, and template boundary merges, among exact-dedup survivors. */
  truncated = 0;
  boundaryMerges = 0;

  constructor(inputs: number) {
    this.inputRows = new Array<number>(inputs).fill(0);
  }

  /**
   * Counts one dropped example at row index `at` (drops come in increasing `at`); the first few of
   * each stage keep a sample for the report.
   */
  drop(stage: string, reason: string, at: number, sample?: string, where?: string): void {
    this.dropMany(stage, reason, 1, at);
    if (sample !== undefined) this.sample(stage, { reason, text: sample, where });
  }

  /** Counts `n` drops at once, the first at row index `at` (samples added apart, with `sample`). */
  dropMany(stage: string, reason: string, n: number, at: number): void {
    if (n === 0) return;
    const s = (this.drops[stage] ??= {});
    s[reason] = (s[reason] ?? 0) + n;
    this.firstDrop[stage] = Math.min(this.firstDrop[stage] ?? Infinity, at);
  }

  /** Adds a sample without counting (the count came with dropMany). */
  sample(stage: string, s: DroppedSample): void {
    const list = (this.samples[stage] ??= []);
    if (list.length < SAMPLES_PER_STAGE) list.push(s);
  }

  badRow(row: BadRow, at: number): void {
    this.drop("bad_rows", row.field ? `bad_field:${row.field.replace(/\[\d+\]/g, "[]")}` : "malformed", at);
    if (this.badRows.length < BAD_ROW_SAMPLES) this.badRows.push(row);
  }

  addPii(counts: Readonly<Record<string, number | undefined>>): void {
    for (const [k, v] of Object.entries(counts)) this.pii[k] = (this.pii[k] ?? 0) + (v ?? 0);
  }

  /** Drops in the fixed stage order (manifest.json's `drops`). */
  orderedDrops(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const stage of STAGE_ORDER) if (this.drops[stage]) out[stage] = this.drops[stage]!;
    return out;
  }

  /** Samples per stage, stages in the order of their first drop (the order the report shows them). */
  orderedSamples(): Record<string, DroppedSample[]> {
    const stages = Object.keys(this.samples).sort((a, b) => (this.firstDrop[a] ?? Infinity) - (this.firstDrop[b] ?? Infinity));
    return Object.fromEntries(stages.map((s) => [s, this.samples[s]!]));
  }

  /**
   * Adds the counts of a later part of the input (a shard) whose rows start at row index `base`:
   * samples stay the first ones in input order.
   */
  addLater(other: CountersJson, base: number): void {
    this.rowsRead += other.rowsRead;
    other.inputRows.forEach((n, k) => (this.inputRows[k] = (this.inputRows[k] ?? 0) + n));
    for (const [stage, reasons] of Object.entries(other.drops)) {
      for (const [reason, n] of Object.entries(reasons)) this.dropMany(stage, reason, n, base + (other.firstDrop[stage] ?? 0));
    }
    for (const [stage, list] of Object.entries(other.samples)) for (const s of list) this.sample(stage, s);
    for (const b of other.badRows) if (this.badRows.length < BAD_ROW_SAMPLES) this.badRows.push(b);
    this.addPii(other.pii);
    this.lengthsBefore.addAll(LengthTally.fromJSON(other.lengthsBefore));
  }

  /** What a shard stores (the per-document counts; the global steps are counted by the merge). */
  toJSON(): CountersJson {
    return {
      rowsRead: this.rowsRead,
      inputRows: this.inputRows,
      drops: this.drops,
      firstDrop: this.firstDrop,
      samples: this.samples,
      badRows: this.badRows,
      pii: this.pii,
      lengthsBefore: this.lengthsBefore.toJSON(),
    };
  }
}

/** No training example survived: say where they went (which stage dropped the most), not just "0 rows". */
export function emptyDatasetError(counters: CurateCounters): UserError {
  const byStage = Object.entries(counters.drops)
    .map(([stage, reasons]) => ({ stage, n: Object.values(reasons).reduce((a, b) => a + b, 0), reasons }))
    .filter((d) => d.n > 0)
    .sort((a, b) => b.n - a.n);
  const list = byStage
    .map(
      (d) =>
        `${d.stage} ${d.n} (${Object.entries(d.reasons)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([r, n]) => `${r} ${n}`)
          .join(", ")})`,
    )
    .join("; ");
  const top = byStage[0];
  return new UserError(`no training examples: all ${counters.rowsRead} row(s) read were dropped${top ? ` — ${list}` : ""}`, {
    field: top && (FILTER_ORDER as readonly string[]).includes(top.stage) ? `filters.${top.stage}` : undefined,
    hint: top ? `most went to ${top.stage}: loosen it, or check the input` : "check the input",
  });
}
