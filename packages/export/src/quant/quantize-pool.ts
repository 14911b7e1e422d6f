// Quantization on worker threads. The K-quants cost ≈ 0.3–0.45 µs per value in JavaScript (float32
// emulated operation by operation for byte-identity with ggml), so a multi-GB export is bound by
// them; each row is quantized on its own (as ggml_quantize_chunk does), so a chunk of rows splits
// into one contiguous part per thread and the parts' bytes, concatenated in order, are exactly the
// single-threaded result. Figures: BENCHMARKS.md ## export.
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { startModuleWorker } from "@owntune/model";
import { GgmlType } from "./ggml-types.js";
import { quantizeTensor } from "./quantize.js";
import type { QuantizeJob } from "./quantize-worker.js";

/** Default thread count: one per core. */
export const defaultQuantizeThreads = (): number => Math.max(1, availableParallelism());

const CHEAP_TYPES: ReadonlySet<number> = new Set([GgmlType.F32, GgmlType.F16, GgmlType.BF16]);

/** Float types, converted value by value at memory speed: handing them to a thread costs more than it saves. */
export const isFloatType = (type: number): boolean => CHEAP_TYPES.has(type);

/** Below this many values a chunk is quantized in the calling thread. */
const MIN_PARALLEL_VALUES = 1 << 16;

interface Pending {
  resolve(bytes: Uint8Array): void;
  reject(e: Error): void;
}

/**
 * A fixed set of quantizing threads. `quantize` returns the bytes of `quantizeTensor` for the same
 * arguments, as a list of consecutive parts. Close it when done (its threads keep the process alive).
 */
export class QuantizePool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: QuantizeJob[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private failure: Error | undefined;
  private closed = false;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`quantize threads must be a positive integer, got ${threads}`);
    for (let i = 0; i < threads; i++) {
      const w = startModuleWorker(import.meta.url, "quantize-worker", undefined);
      w.on("message", (msg: { id: number; bytes?: Uint8Array; error?: string }) => {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        this.idle.push(w);
        this.pump();
        if (!p) return;
        if (msg.error !== undefined) p.reject(new Error(msg.error));
        else p.resolve(msg.bytes!);
      });
      w.on("error", (e) => this.fail(e));
      w.on("exit", (code) => {
        if (!this.closed) this.fail(new Error(`quantize worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.idle.shift()!.postMessage(job, [job.values.buffer as ArrayBuffer]);
    }
  }

  private submit(type: number, values: Float32Array, rowLength: number): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error("the quantize pool is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, type, rowLength, values });
      this.pump();
    });
  }

  /**
   * `quantizeTensor(type, data, rowLength)` as consecutive byte parts, one per thread. `data` is copied
   * (the caller keeps it). Cheap types and small chunks are converted in the calling thread.
   */
  async quantize(type: number, data: Float32Array, rowLength: number): Promise<Uint8Array[]> {
    const rows = data.length / rowLength;
    if (isFloatType(type) || data.length < MIN_PARALLEL_VALUES || !Number.isInteger(rows) || rows < 2) {
      return [quantizeTensor(type, data, rowLength)];
    }
    const parts = Math.min(this.threads, rows);
    const jobs: Promise<Uint8Array>[] = [];
    for (let p = 0; p < parts; p++) {
      const a = Math.floor((p * rows) / parts);
      const b = Math.floor(((p + 1) * rows) / parts);
      jobs.push(this.submit(type, data.slice(a * rowLength, b * rowLength), rowLength));
    }
    return Promise.all(jobs);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
