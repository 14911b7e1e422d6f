// Reading a curated dataset directory: what the LoRA trainer uses to stream batches. The order is
// deterministic for a seed and epoch (shards shuffled, then rows within each shard, so only one
// shard is in memory at a time) and resumable from a position saved in a checkpoint.
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { fmix32, shuffledIndices, UserError } from "@owntune/core";
import { readShard, shardSizeError, type ShardData } from "./arrow-dataset.js";
import { readManifest, type Manifest } from "./manifest.js";

export type SplitName = "train" | "val";

/** Where a stream of batches stands: rows consumed so far in `epoch`. Save it in checkpoints. */
export interface DataPosition {
  epoch: number;
  /** Rows of this epoch already delivered. */
  offset: number;
}

/** B packed rows, flat row-major [B, T] int32 arrays. */
export interface DatasetBatch {
  inputIds: Int32Array;
  lossMask: Int32Array;
  positionIds: Int32Array;
  segmentIds: Int32Array;
  /** Rows in this batch (the last of an epoch may be smaller unless dropLast). */
  batchSize: number;
  seqLen: number;
  /** The position after this batch: resume from here to continue with the next one. */
  next: DataPosition;
}

export interface BatchOptions {
  batchSize: number;
  /** Shuffle seed; the order of each epoch depends on (seed, epoch) only. */
  seed?: number;
  /** Shuffle rows (default true for train, false for val). */
  shuffle?: boolean;
  /** Start here (from a checkpoint); default the start of epoch 0. */
  start?: DataPosition;
  /** Stop after this many epochs in total (default 1). */
  epochs?: number;
  /** Skip an epoch's last batch when smaller than batchSize (default false). */
  dropLast?: boolean;
}

function identity(n: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return p;
}

/** An opened dataset directory (manifest checked; shards read lazily). */
export class CuratedDataset {
  private constructor(
    readonly dir: string,
    readonly manifest: Manifest,
  ) {}

  /**
   * Opens a dataset: the manifest is checked, and every shard it lists must be there with its recorded
   * size. Each shard's sha256 is checked when it is read, before any of its rows is used.
   */
  static async open(dir: string): Promise<CuratedDataset> {
    const manifest = await readManifest(dir);
    for (const split of ["train", "val"] as const) {
      for (const shard of manifest.splits[split].shards) {
        const path = join(dir, shard.file);
        const size = await stat(path).then(
          (s) => s.size,
          () => undefined,
        );
        if (size === undefined)
          throw new UserError("shard listed in manifest.json is missing", { file: path, hint: 're-run "owntune curate"' });
        if (size !== shard.bytes) throw shardSizeError(path, size, shard.bytes);
      }
    }
    return new CuratedDataset(dir, manifest);
  }

  get seqLen(): number {
    return this.manifest.seq_len;
  }

  /** Rows in a split. */
  rows(split: SplitName): number {
    return this.manifest.splits[split].rows;
  }

  /** Batches per epoch for a batch size. */
  batchesPerEpoch(split: SplitName, batchSize: number, dropLast = false): number {
    const n = this.rows(split);
    return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  }

  /** Reads one shard of a split (checked against the manifest's seq_len). */
  async readShard(split: SplitName, index: number): Promise<ShardData> {
    const shard = this.manifest.splits[split].shards[index];
    if (!shard) throw new UserError(`${split} has no shard ${index}`, { file: this.dir });
    const data = await readShard(join(this.dir, shard.file), this.seqLen, shard);
    if (data.rows !== shard.rows) {
      throw new UserError(`has ${data.rows} rows, manifest.json says ${shard.rows}`, {
        file: join(this.dir, shard.file),
        hint: 're-run "owntune curate"',
      });
    }
    return data;
  }

  /** Streams batches of `split` in a seeded order, from `start`, for `epochs` epochs. */
  async *batches(split: SplitName, options: BatchOptions): AsyncGenerator<DatasetBatch> {
    const { batchSize } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new UserError(`batch size must be a positive integer, got ${batchSize}`);
    const seed = options.seed ?? this.manifest.seed;
    const shuffle = options.shuffle ?? split === "train";
    const epochs = options.epochs ?? 1;
    const shards = this.manifest.splits[split].shards;
    const total = this.rows(split);
    const T = this.seqLen;
    let { epoch, offset } = options.start ?? { epoch: 0, offset: 0 };
    if (total === 0) return;
    for (; epoch < epochs; epoch++, offset = 0) {
      const epochSeed = fmix32((seed ^ fmix32(epoch + 1)) >>> 0);
      const shardOrder = shuffle ? shuffledIndices(shards.length, epochSeed) : identity(shards.length);
      // Rows of the epoch in order: shard by shard, rows permuted within each shard. `starts[k]` is
      // the epoch index of the first row of the k-th shard in that order.
      const starts: number[] = [0];
      for (const i of shardOrder) starts.push(starts[starts.length - 1]! + shards[i]!.rows);
      let loaded: { k: number; data: ShardData; order: Uint32Array } | undefined;
      const takeRow = async (target: number): Promise<{ data: ShardData; row: number }> => {
        let k = loaded?.k ?? 0;
        while (starts[k + 1]! <= target) k++; // positions only move forward within an epoch
        if (!loaded || loaded.k !== k) {
          const shardIndex = shardOrder[k]!;
          const data = await this.readShard(split, shardIndex);
          const order = shuffle ? shuffledIndices(data.rows, fmix32(epochSeed ^ (shardIndex + 1))) : identity(data.rows);
          loaded = { k, data, order };
        }
        return { data: loaded.data, row: loaded.order[target - starts[k]!]! };
      };
      while (offset < total) {
        const B = Math.min(batchSize, total - offset);
        if (B < batchSize && options.dropLast) break;
        const batch: DatasetBatch = {
          inputIds: new Int32Array(B * T),
          lossMask: new Int32Array(B * T),
          positionIds: new Int32Array(B * T),
          segmentIds: new Int32Array(B * T),
          batchSize: B,
          seqLen: T,
          next: { epoch, offset: offset + B },
        };
        for (let b = 0; b < B; b++) {
          const { data, row } = await takeRow(offset + b);
          const from = row * T;
          batch.inputIds.set(data.columns.input_ids.subarray(from, from + T), b * T);
          batch.lossMask.set(data.columns.loss_mask.subarray(from, from + T), b * T);
          batch.positionIds.set(data.columns.position_ids.subarray(from, from + T), b * T);
          batch.segmentIds.set(data.columns.segment_ids.subarray(from, from + T), b * T);
        }
        offset += B;
        if (offset >= total) batch.next = { epoch: epoch + 1, offset: 0 };
        yield batch;
      }
    }
  }
}
