// Worker thread entry: loads the tokenizer and builds a Processor from the setup it is started with,
// then answers each chunk of rows with its results (token buffers transferred, not copied), and an
// "info" job with what the main thread needs to know of the tokenizer.
import { workerData } from "node:worker_threads";
import { serveJobs } from "@owntune/core";
import { Processor, transferList, type ChunkResult } from "./processor.js";
import { loadTokenizerFor, tokenizerInfo, type TokenizerInfo } from "./tokenizer.js";
import type { WorkerInit, WorkerJob } from "./worker-pool.js";

const init = workerData as WorkerInit;
const ready = (async () => {
  const tok = await loadTokenizerFor(init.tokenizerDir);
  return { processor: await Processor.create(init.setup, tok), info: tokenizerInfo(tok) };
})();

serveJobs<WorkerJob, ChunkResult | TokenizerInfo>(
  async (job) => (job.kind === "info" ? (await ready).info : (await ready).processor.processChunk(job)),
  (r) => ("results" in r ? transferList(r) : []),
);
