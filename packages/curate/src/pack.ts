// Packing tokenized examples into rows of seq_len: best-fit-decreasing bin packing (Johnson 1974;
// the "BFD" of Ding et al. 2024, "Fewer Truncations Improve Language Modeling"), position_ids
// restarting at each document, segment_ids numbering documents within a row (0 = padding).
// The no-packing mode puts one example per row. Every row is padded to exactly seq_len.
// Large splits are packed in windows of PACK_WINDOW_ITEMS consecutive examples (see planRows).
import { shuffledIndices } from "@owntune/core";

/** One example's tokens, as packing sees them. */
export interface PackItem {
  ids: Int32Array;
  mask: Uint8Array;
}

/** A packed (or padded) row: four int32 arrays of length seq_len. */
export interface PackedRow {
  input_ids: Int32Array;
  loss_mask: Int32Array;
  position_ids: Int32Array;
  segment_ids: Int32Array;
  /** Tokens that are real (not padding). */
  tokens: number;
  /** Documents in this row. */
  documents: number;
}

/** Smallest-capacity-that-fits lookup over capacities 0..S: a segment tree of bin counts. */
class CapacityIndex {
  private readonly size: number;
  private readonly tree: Int32Array;
  private readonly stacks: number[][];

  constructor(maxCapacity: number) {
    let size = 1;
    while (size < maxCapacity + 1) size *= 2;
    this.size = size;
    this.tree = new Int32Array(2 * size);
    this.stacks = Array.from({ length: maxCapacity + 1 }, () => []);
  }

  private bump(c: number, d: number): void {
    for (let i = c + this.size; i >= 1; i >>= 1) this.tree[i]! += d;
  }

  push(capacity: number, bin: number): void {
    this.stacks[capacity]!.push(bin);
    this.bump(capacity, 1);
  }

  /** Removes and returns a bin with the smallest capacity ≥ need, or undefined. */
  takeAtLeast(need: number): { bin: number; capacity: number } | undefined {
    // Descend to the leftmost leaf ≥ need with a non-zero count.
    const find = (node: number, lo: number, hi: number): number => {
      if (hi < need || this.tree[node] === 0) return -1;
      if (lo === hi) return lo;
      const mid = (lo + hi) >> 1;
      const left = find(node * 2, lo, mid);
      return left >= 0 ? left : find(node * 2 + 1, mid + 1, hi);
    };
    const c = find(1, 0, this.size - 1);
    if (c < 0) return undefined;
    const bin = this.stacks[c]!.pop()!;
    this.bump(c, -1);
    return { bin, capacity: c };
  }
}

/**
 * Best-fit-decreasing: items by length, longest first (ties by index), each into the open bin whose
 * free space is smallest but still enough, else a new bin. Returns item indices per bin, in
 * placement order. Every length must be ≤ seqLen.
 */
export function bestFitDecreasing(lengths: readonly number[], seqLen: number): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b]! - lengths[a]! || a - b);
  const bins: number[][] = [];
  const index = new CapacityIndex(seqLen);
  for (const item of order) {
    const len = lengths[item]!;
    if (len > seqLen) throw new Error(`packing: item ${item} has ${len} tokens, more than seq_len ${seqLen}`);
    const hit = index.takeAtLeast(len);
    if (hit) {
      bins[hit.bin]!.push(item);
      index.push(hit.capacity - len, hit.bin);
    } else {
      bins.push([item]);
      index.push(seqLen - len, bins.length - 1);
    }
  }
  return bins;
}

/** Lays the given items into one row of seqLen, padding with `padId`. */
export function buildRow(items: readonly PackItem[], seqLen: number, padId: number): PackedRow {
  const input_ids = new Int32Array(seqLen).fill(padId);
  const loss_mask = new Int32Array(seqLen);
  const position_ids = new Int32Array(seqLen);
  const segment_ids = new Int32Array(seqLen);
  let at = 0;
  items.forEach((it, d) => {
    const n = it.ids.length;
    if (at + n > seqLen) throw new Error(`packing: row overflows seq_len ${seqLen}`);
    input_ids.set(it.ids, at);
    for (let t = 0; t < n; t++) {
      loss_mask[at + t] = it.mask[t]!;
      position_ids[at + t] = t;
      segment_ids[at + t] = d + 1;
    }
    at += n;
  });
  return { input_ids, loss_mask, position_ids, segment_ids, tokens: at, documents: items.length };
}

/**
 * Examples packed together at most: best-fit-decreasing runs over consecutive windows of this many
 * examples (of a split already shuffled), so packing memory stays bounded whatever the input size.
 * A split of up to this many examples is packed as one window. Measured cost: BENCHMARKS.md §curate.
 */
export const PACK_WINDOW_ITEMS = 1 << 20;

/** Which items fill each row, rows in output order: row r holds items[rowStart[r] … rowStart[r+1]). */
export interface RowPlan {
  rowStart: Uint32Array;
  items: Uint32Array;
}

export interface PlanOptions {
  /** Shuffles the rows (seeded Fisher–Yates over the bins); rows stay in packing order without it. */
  shuffleSeed?: number;
  /** Examples per packing window (default PACK_WINDOW_ITEMS). */
  window?: number;
}

/**
 * Plans a split's rows from its examples' token lengths: best-fit-decreasing per window (or one
 * example per row without packing), then, with `shuffleSeed`, the rows in a seeded order.
 */
export function planRows(lengths: ArrayLike<number>, seqLen: number, packing: boolean, options: PlanOptions = {}): RowPlan {
  const n = lengths.length;
  const window = options.window ?? PACK_WINDOW_ITEMS;
  // Bins in packing order, as CSR: bin b holds binItems[binStart[b] … binStart[b+1]).
  const binItems = new Uint32Array(n);
  const binStarts: number[] = [0];
  let at = 0;
  if (!packing) {
    for (let i = 0; i < n; i++) {
      binItems[at++] = i;
      binStarts.push(at);
    }
  } else {
    for (let w0 = 0; w0 < n; w0 += window) {
      const w1 = Math.min(n, w0 + window);
      const part = Array.from({ length: w1 - w0 }, (_, i) => lengths[w0 + i]!);
      for (const bin of bestFitDecreasing(part, seqLen)) {
        for (const i of bin) binItems[at++] = w0 + i;
        binStarts.push(at);
      }
    }
  }
  const bins = binStarts.length - 1;
  const order = options.shuffleSeed === undefined ? undefined : shuffledIndices(bins, options.shuffleSeed);
  const rowStart = new Uint32Array(bins + 1);
  const items = new Uint32Array(n);
  let k = 0;
  for (let r = 0; r < bins; r++) {
    const b = order ? order[r]! : r;
    for (let j = binStarts[b]!; j < binStarts[b + 1]!; j++) items[k++] = binItems[j]!;
    rowStart[r + 1] = k;
  }
  return { rowStart, items };
}

/** The rows of a plan, built from each item's tokens. */
export function* planToRows(plan: RowPlan, item: (i: number) => PackItem, seqLen: number, padId: number): Generator<PackedRow> {
  for (let r = 0; r + 1 < plan.rowStart.length; r++) {
    const its: PackItem[] = [];
    for (let j = plan.rowStart[r]!; j < plan.rowStart[r + 1]!; j++) its.push(item(plan.items[j]!));
    yield buildRow(its, seqLen, padId);
  }
}

/** Real tokens over row capacity: 1.0 means no padding at all. */
export function packingEfficiency(rows: readonly PackedRow[], seqLen: number): number {
  if (rows.length === 0) return 0;
  let tokens = 0;
  for (const r of rows) tokens += r.tokens;
  return tokens / (rows.length * seqLen);
}
