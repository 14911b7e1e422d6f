// Packing tokenized examples into rows of seq_len: best-fit-decreasing bin packing (Johnson 1974;
// the "BFD" of Ding et al. 2024, "Fewer Truncations Improve Language Modeling"), position_ids
// restarting at each document, segment_ids numbering documents within a row (0 = padding).
// The no-packing mode puts one example per row. Every row is padded to exactly seq_len.

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

/** Packs (or, with `packing` false, pads one per row) the items into rows, in a deterministic order. */
export function packRows(items: readonly PackItem[], seqLen: number, padId: number, packing: boolean): PackedRow[] {
  if (!packing) return items.map((it) => buildRow([it], seqLen, padId));
  const bins = bestFitDecreasing(
    items.map((it) => it.ids.length),
    seqLen,
  );
  return bins.map((b) => buildRow(b.map((i) => items[i]!), seqLen, padId));
}

/** Real tokens over row capacity: 1.0 means no padding at all. */
export function packingEfficiency(rows: readonly PackedRow[], seqLen: number): number {
  if (rows.length === 0) return 0;
  let tokens = 0;
  for (const r of rows) tokens += r.tokens;
  return tokens / (rows.length * seqLen);
}
