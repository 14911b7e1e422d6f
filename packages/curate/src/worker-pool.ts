// A fixed pool of worker threads for the per-example work. Chunks go to whichever worker is free;
// results are handed back in submission order, so output never depends on scheduling.
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { startModuleWorker, UserError } from "@owntune/model";
import type { ChunkResult, ProcessorSetup, RowChunk } from "./processor.js";

/** Default worker count: one per core. */
export const defaultWorkers = (): number => Math.max(1, availableParallelism());

interface Pending {
  resolve(r: ChunkResult): void;
  reject(e: Error): void;
}

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ id: number; chunk: RowChunk }> = [];
  private readonly pending = new Map<number, Pending>();
  private readonly busy = new Map<Worker, number>();
  private nextId = 0;
  private failure: Error | undefined;

  constructor(count: number, setup: ProcessorSetup, tokenizerDir: string | undefined) {
    for (let i = 0; i < count; i++) {
      const w = startModuleWorker(import.meta.url, "worker", { setup, tokenizerDir });
      w.on("message", (msg: { id: number; result?: ChunkResult; error?: { name: string; message: string; stack?: string; file?: string; line?: number; field?: string; hint?: string } }) => {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        this.busy.delete(w);
        this.idle.push(w);
        this.pump();
        if (!p) return;
        if (msg.error) {
          const e = msg.error;
          const err = e.name === "UserError" ? new UserError(e.message, { file: e.file, line: e.line, field: e.field, hint: e.hint }) : new Error(e.message);
          if (e.stack && e.name !== "UserError") err.stack = e.stack;
          p.reject(err);
        } else p.resolve(msg.result!);
      });
      w.on("error", (e) => this.fail(e));
      w.on("exit", (code) => {
        if (code !== 0 && !this.closed) this.fail(new Error(`curate worker exited with code ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private closed = false;

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.shift()!;
      const job = this.queue.shift()!;
      this.busy.set(w, job.id);
      w.postMessage(job);
    }
  }

  /** Queues a chunk; the promise settles with its results. */
  run(chunk: RowChunk): Promise<ChunkResult> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, chunk });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
