// The pool of worker threads doing the per-example work (worker.ts). Chunks go to whichever worker is
// free; the pipeline keeps the promises in submission order, so output never depends on scheduling.
import { ThreadPool } from "@owntune/core";
import type { ChunkResult, ProcessorSetup, RowChunk } from "./processor.js";
import type { TokenizerInfo } from "./tokenizer.js";

/** What each worker is started with (worker.ts). */
export interface WorkerInit {
  setup: ProcessorSetup;
  tokenizerDir: string | undefined;
}

/** A chunk of rows to process, or a request for the tokenizer's identity. */
export type WorkerJob = RowChunk | { kind: "info" };

export class WorkerPool extends ThreadPool<WorkerJob, ChunkResult | TokenizerInfo> {
  constructor(count: number, setup: ProcessorSetup, tokenizerDir: string | undefined) {
    super(import.meta.url, "worker", count, { setup, tokenizerDir } satisfies WorkerInit);
  }

  process(chunk: RowChunk): Promise<ChunkResult> {
    return this.run(chunk, chunk.kind === "jsonl" ? [chunk.bytes.buffer as ArrayBuffer] : []) as Promise<ChunkResult>;
  }

  tokenizerInfo(): Promise<TokenizerInfo> {
    return this.run({ kind: "info" }) as Promise<TokenizerInfo>;
  }
}
