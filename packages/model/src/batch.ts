// Token batches for the forward pass: rows of equal length with optional positions and documents
// (packed training rows), checked once.

/** Token rows of equal length. Positions/segments default as described; all arrays are [B][T]. */
export interface TokenBatch {
  ids: ReadonlyArray<ArrayLike<number>>;
  /**
   * RoPE position of each token. Default: index within the row, restarting at 0 at each new segment;
   * with a cache, `cache.length + index`.
   */
  positions?: ReadonlyArray<ArrayLike<number>>;
  /** Document of each token in a packed row: attention never crosses documents. Default: one document. */
  segments?: ReadonlyArray<ArrayLike<number>>;
}

/** Training rows: tokens plus a loss mask (1 where the token is a training target). */
export interface LossBatch extends TokenBatch {
  lossMask: ReadonlyArray<ArrayLike<number>>;
}

/** Rows and tokens per row of a batch, checking every array against ids. */
export function batchShape(batch: TokenBatch): { B: number; T: number } {
  const B = batch.ids.length;
  if (B === 0) throw new RangeError("empty batch");
  const T = batch.ids[0]!.length;
  if (T === 0) throw new RangeError("empty rows");
  const check = (rows: ReadonlyArray<ArrayLike<number>> | undefined, what: string) => {
    if (!rows) return;
    if (rows.length !== B) throw new RangeError(`${what} has ${rows.length} rows, ids has ${B}`);
    rows.forEach((r, b) => {
      if (r.length !== T) throw new RangeError(`${what} row ${b} has ${r.length} tokens, expected ${T} (rows must be of equal length)`);
    });
  };
  check(batch.ids, "ids");
  check(batch.positions, "positions");
  check(batch.segments, "segments");
  if ("lossMask" in batch) check((batch as LossBatch).lossMask, "lossMask");
  return { B, T };
}

/** Whether token t+1 of row b continues token t's document. */
export function sameSegment(batch: TokenBatch, b: number, t: number): boolean {
  return !batch.segments || batch.segments[b]![t] === batch.segments[b]![t + 1];
}
