// Training rows as one stream: the train split in its seeded order, epoch after epoch, read from the
// curated Arrow dataset one shard at a time (never whole). An optimizer step takes the next
// batch_size × grad_accum rows, so the order of rows depends on the seed only — never on batch_size
// or grad_accum — and k micro-batches of B rows see exactly the rows of one batch of k·B.
import { countLossTokens, type LossBatch } from "@owntune/model";
import type { CuratedDataset, DataPosition, DatasetBatch, SplitName } from "@owntune/curate";

/** One packed row: [T] int32 columns (views). */
export interface Row {
  inputIds: Int32Array;
  lossMask: Int32Array;
  positionIds: Int32Array;
  segmentIds: Int32Array;
}

/** A micro-batch ready for the forward pass, with its loss-bearing target count. */
export interface MicroBatch {
  batch: LossBatch;
  rows: number;
  /** Tokens per row after trailing padding is trimmed. */
  length: number;
  /** Next-token targets that carry loss (lmLoss's count). */
  targets: number;
}

/** Reads rows of a split from `start` in the dataset's seeded order, across epochs without end. */
export class RowStream {
  private readonly iter: AsyncGenerator<DatasetBatch>;
  private position: DataPosition;

  constructor(
    dataset: CuratedDataset,
    split: SplitName,
    options: { seed: number; start: DataPosition; shuffle?: boolean; epochs?: number },
  ) {
    this.position = options.start;
    this.iter = dataset.batches(split, {
      batchSize: 1,
      seed: options.seed,
      start: options.start,
      shuffle: options.shuffle,
      epochs: options.epochs ?? Infinity,
    });
  }

  /** Where the next row comes from (save this in a checkpoint). */
  get next(): DataPosition {
    return this.position;
  }

  /** Up to `n` rows (fewer only where a finite stream ends). */
  async take(n: number): Promise<Row[]> {
    const rows: Row[] = [];
    while (rows.length < n) {
      const r = await this.iter.next();
      if (r.done) break;
      const b = r.value;
      rows.push({ inputIds: b.inputIds, lossMask: b.lossMask, positionIds: b.positionIds, segmentIds: b.segmentIds });
      this.position = b.next;
    }
    return rows;
  }

  async close(): Promise<void> {
    await this.iter.return(undefined);
  }
}

/**
 * Micro-batches of at most `size` rows. Trailing columns that are padding in every row (segment 0) are
 * trimmed: attention is causal and never crosses segments, so no real token sees them.
 */
export function microBatches(rows: readonly Row[], size: number): MicroBatch[] {
  const out: MicroBatch[] = [];
  for (let i = 0; i < rows.length; i += size) {
    const group = rows.slice(i, i + size);
    let length = 1;
    for (const r of group) {
      for (let t = r.segmentIds.length - 1; t >= length; t--) {
        if (r.segmentIds[t] !== 0) {
          length = t + 1;
          break;
        }
      }
    }
    const batch: LossBatch = {
      ids: group.map((r) => r.inputIds.subarray(0, length)),
      lossMask: group.map((r) => r.lossMask.subarray(0, length)),
      positions: group.map((r) => r.positionIds.subarray(0, length)),
      segments: group.map((r) => r.segmentIds.subarray(0, length)),
    };
    out.push({ batch, rows: group.length, length, targets: countLossTokens(batch) });
  }
  return out;
}
