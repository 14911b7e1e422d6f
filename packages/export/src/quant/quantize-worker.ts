// Worker thread entry for QuantizePool: quantizes the rows it is sent and hands the bytes back
// (transferred, not copied).
import { parentPort } from "node:worker_threads";
import { quantizeTensor } from "./quantize.js";

export interface QuantizeJob {
  id: number;
  type: number;
  rowLength: number;
  values: Float32Array;
}

const port = parentPort;
if (!port) throw new Error("quantize-worker.ts must run in a worker thread");

port.on("message", (job: QuantizeJob) => {
  try {
    const bytes = quantizeTensor(job.type, job.values, job.rowLength);
    port.postMessage({ id: job.id, bytes }, [bytes.buffer as ArrayBuffer]);
  } catch (e) {
    port.postMessage({ id: job.id, error: (e as Error).message });
  }
});
