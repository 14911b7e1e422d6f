// The pool of worker threads doing the per-example work (worker.ts). Chunks go to whichever worker is
// free; the pipeline keeps the promises in submission order, so output never depends on scheduling.
import { ThreadPool } from "@owntune/model";
import type { ChunkResult, ProcessorSetup, RowChunk } from "./processor.js";

/** What each worker is started with (worker.ts). */
export interface WorkerInit {
  setup: ProcessorSetup;
  tokenizerDir: string | undefined;
}

export class WorkerPool extends ThreadPool<RowChunk, ChunkResult> {
  constructor(count: number, setup: ProcessorSetup, tokenizerDir: string | undefined) {
    super(import.meta.url, "worker", count, { setup, tokenizerDir } satisfies WorkerInit);
  }
}
