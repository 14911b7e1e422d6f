// Worker thread entry for QuantizePool: quantizes the rows it is sent and hands the bytes back
// (transferred, not copied). Imports only what it needs: the model package's index would load
// TensorFlow.js into every thread (≈ 1 s and ≈ 100 MB each).
import { serveJobs } from "@owntune/model/worker-thread";
import { quantizeTensor } from "./quantize.js";
import type { QuantizeJob } from "./quantize-pool.js";

serveJobs<QuantizeJob, Uint8Array>(
  (job) => quantizeTensor(job.type, job.values, job.rowLength),
  (bytes) => [bytes.buffer as ArrayBuffer],
);
