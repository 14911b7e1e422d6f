// Worker thread entry for QuantizePool: quantizes the rows it is sent and hands the bytes back
// (transferred, not copied).
import { serveJobs } from "@owntune/model";
import { quantizeTensor } from "./quantize.js";
import type { QuantizeJob } from "./quantize-pool.js";

serveJobs<QuantizeJob, Uint8Array>(
  (job) => quantizeTensor(job.type, job.values, job.rowLength),
  (bytes) => [bytes.buffer as ArrayBuffer],
);
