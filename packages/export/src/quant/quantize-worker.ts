// Worker thread entry for QuantizePool: quantizes the rows it is sent (quantizer.ts: ggml or JS) and hands the bytes back
// (transferred, not copied). Imports only what it needs: the model package's index would load
// TensorFlow.js into every thread (≈ 1 s and ≈ 100 MB each).
import { serveJobs } from "@owntune/core";
import { quantizeRows } from "./quantizer.js";
import type { QuantizeJob } from "./quantize-pool.js";

serveJobs<QuantizeJob, Uint8Array>(
  (job) => quantizeRows(job.type, job.values, job.rowLength),
  (bytes) => [bytes.buffer as ArrayBuffer],
);
