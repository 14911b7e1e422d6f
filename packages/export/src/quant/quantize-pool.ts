// Quantization on worker threads, each running ggml's own quantizer where it loads, else ours in
// JavaScript (quantizer.ts; there the K-quants cost ≈ 0.15–0.35 µs per value), so a multi-GB export is
// bound by them; each row is quantized on its own (as ggml_quantize_chunk does), so a chunk of rows
// splits into one contiguous part per thread and the parts' bytes, concatenated in order, are exactly
// the single-threaded result. Figures: BENCHMARKS.md ## export.
import { ThreadPool } from "@owntune/core";
import { GgmlType } from "./ggml-types.js";
import { quantizeRows } from "./quantizer.js";

const CHEAP_TYPES: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

/** Float types, converted value by value at memory speed: handing them to a thread costs more than it saves. */
export const isFloatType = (type: number): boolean => CHEAP_TYPES.has(type);

/** Below this many values a chunk is quantized in the calling thread. */
const MIN_PARALLEL_VALUES = 1 << 16;

/** Rows of one tensor chunk for a thread to quantize. */
export interface QuantizeJob {
  type: number;
  rowLength: number;
  values: Float32Array;
}

/**
 * A fixed set of quantizing threads. `quantize` returns the bytes of `quantizeRows` for the same
 * arguments, as a list of consecutive parts. Close it when done (its threads keep the process alive).
 */
export class QuantizePool {
  private readonly pool: ThreadPool<QuantizeJob, Uint8Array>;

  constructor(readonly threads: number) {
    this.pool = new ThreadPool(import.meta.url, "quantize-worker", threads);
  }

  /**
   * `quantizeRows(type, data, rowLength)` as consecutive byte parts, one per thread. `data` is copied
   * (the caller keeps it). Cheap types and small chunks are converted in the calling thread.
   */
  async quantize(type: number, data: Float32Array, rowLength: number): Promise<Uint8Array[]> {
    const rows = data.length / rowLength;
    if (isFloatType(type) || data.length < MIN_PARALLEL_VALUES || !Number.isInteger(rows) || rows < 2) {
      return [quantizeRows(type, data, rowLength)];
    }
    const parts = Math.min(this.threads, rows);
    const jobs: Promise<Uint8Array>[] = [];
    for (let p = 0; p < parts; p++) {
      const a = Math.floor((p * rows) / parts);
      const b = Math.floor(((p + 1) * rows) / parts);
      const values = data.slice(a * rowLength, b * rowLength);
      jobs.push(this.pool.run({ type, rowLength, values }, [values.buffer as ArrayBuffer]));
    }
    return Promise.all(jobs);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}
