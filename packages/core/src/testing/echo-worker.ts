// A worker for worker-thread.test.ts: doubles numbers, or throws the error a job asks for.
import { serveJobs } from "../worker-thread.js";
import { UserError } from "../errors.js";

export type EchoJob = { double: Float64Array } | { throwUser: string } | { throwPlain: string };

serveJobs<EchoJob, Float64Array>(
  (job) => {
    if ("throwUser" in job) throw new UserError(job.throwUser, { file: "data.jsonl", line: 7, field: "text" });
    if ("throwPlain" in job) throw new TypeError(job.throwPlain);
    return job.double.map((x) => 2 * x);
  },
  (out) => [out.buffer as ArrayBuffer],
);
