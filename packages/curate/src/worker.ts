// Worker thread entry: loads the tokenizer and builds a Processor from the setup it is started with,
// then answers each chunk of rows with its results (token buffers transferred, not copied).
import { workerData } from "node:worker_threads";
import { serveJobs } from "@owntune/model";
import { loadTokenizerFor } from "./tokenizer.js";
import { Processor, transferList, type ChunkResult, type RowChunk } from "./processor.js";
import type { WorkerInit } from "./worker-pool.js";

const init = workerData as WorkerInit;
const ready = (async () => Processor.create(init.setup, await loadTokenizerFor(init.tokenizerDir)))();

serveJobs<RowChunk, ChunkResult>(async (chunk) => (await ready).processChunk(chunk), transferList);
