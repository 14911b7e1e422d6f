// Worker thread entry: loads the tokenizer and builds a Processor from the setup it is sent, then
// answers each chunk of rows with its results (token buffers transferred, not copied).
import { parentPort, workerData } from "node:worker_threads";
import { loadTokenizerFor } from "./tokenizer.js";
import { Processor, transferList, type ProcessorSetup, type RowChunk } from "./processor.js";

interface WorkerInit {
  setup: ProcessorSetup;
  tokenizerDir: string | undefined;
}

const port = parentPort;
if (!port) throw new Error("worker.ts must run in a worker thread");
const init = workerData as WorkerInit;
const ready = (async () => Processor.create(init.setup, await loadTokenizerFor(init.tokenizerDir)))();

port.on("message", async (msg: { id: number; chunk: RowChunk }) => {
  try {
    const processor = await ready;
    const result = processor.processChunk(msg.chunk);
    port.postMessage({ id: msg.id, result }, transferList(result));
  } catch (e) {
    const err = e as Error & { file?: string; line?: number; field?: string; hint?: string };
    port.postMessage({
      id: msg.id,
      error: { name: err.name, message: err.message, stack: err.stack, file: err.file, line: err.line, field: err.field, hint: err.hint },
    });
  }
});
