// One measurement for bench/curate-worker.bench.ts, in a fresh process: `… bench/curate-worker-child.ts
// ROOT THREADS [MODULE]` starts THREADS of curate's worker threads from the checkout at ROOT (its own
// worker.ts, booted as startModuleWorker boots a TypeScript worker, so another checkout's code can be
// measured; with MODULE, each thread imports that first, e.g. @owntune/model to see what loading
// TensorFlow.js would cost), waits until each has loaded its imports and the tokenizer and answered its
// first job, and prints { startSeconds, rssPerThreadMiB }: wall seconds from start to the last answer,
// and the process's RSS growth divided by the threads once every thread has run a full garbage
// collection (run it under --expose-gc; otherwise the tokenizer's parse garbage blurs the figure).
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

const [root, threadArg, preload] = process.argv.slice(2);
const threads = Number(threadArg ?? 1);
const curate = pathToFileURL(join(root!, "packages/curate/src/")).href;
const { resolveCurateConfig } = (await import(new URL("config.ts", curate).href)) as typeof import("../packages/curate/src/config.js");
const workerData = {
  setup: { config: resolveCurateConfig({ inputs: [{ path: "unused.jsonl" }] }), contamination: new Float64Array(0) },
  tokenizerDir: undefined,
};
const tsxApi = pathToFileURL(
  createRequire(curate)
    .resolve("tsx/esm/api")
    .replace(/\.cjs$/, ".mjs"),
).href;
const importIn = (spec: string) =>
  `.then(() => m.tsImport(${JSON.stringify(spec)}, ${JSON.stringify(new URL("worker-pool.ts", curate).href)}))`;
// Once the worker listens, a "gc" job also collects garbage in the thread: this second listener runs
// before the worker's own answer to that job (whatever it is) is posted.
const collect = `.then(() => require("node:worker_threads").parentPort.on("message", (m) => m.job.kind === "gc" && globalThis.gc?.()))`;
const boot = `import(${JSON.stringify(tsxApi)}).then((m) => Promise.resolve()${preload ? importIn(preload) : ""}${importIn(new URL("worker.ts", curate).href)})${collect};`;

const rss0 = process.memoryUsage().rss;
const t0 = performance.now();
const workers = Array.from(
  { length: threads },
  () => new Worker(boot, { eval: true, workerData, execArgv: ["--conditions=@owntune/source"] }),
);
const ask = (kind: string) =>
  Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.once("message", () => resolve());
          w.once("error", reject);
          w.postMessage({ id: 0, job: { kind } });
        }),
    ),
  );
await ask("info"); // answered once the tokenizer is loaded
const startSeconds = (performance.now() - t0) / 1000;
await ask("gc");
globalThis.gc?.();
const rssPerThreadMiB = (process.memoryUsage().rss - rss0) / threads / 2 ** 20;
await Promise.all(workers.map((w) => w.terminate()));
console.log(JSON.stringify({ startSeconds, rssPerThreadMiB }));
