// Curate's worker threads: what each one loads, how long it takes to be ready (imports, tokenizer, first
// answer) and how much RSS it adds, for this checkout, for this checkout's worker made to import
// @owntune/model (TensorFlow.js) first, and beside them another checkout
// (OWNTUNE_BENCH_BASE_TREE=/path/to/checkout, e.g. the commit before a change; it needs its own
// node_modules). Each figure is the best of OWNTUNE_BENCH_REPEATS (default 3) fresh processes
// (bench/curate-worker-child.ts), with 1 and 2 threads.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { importGraph } from "./import-graph.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const WORKER = "packages/curate/src/worker.ts";

interface Sample {
  startSeconds: number;
  rssPerThreadMiB: number;
}

async function measure(tree: string, threads: number, preload: string | undefined): Promise<Sample> {
  const args = [
    "--expose-gc",
    "--conditions=@owntune/source",
    "--import",
    "tsx",
    join(here, "curate-worker-child.ts"),
    tree,
    String(threads),
    ...(preload ? [preload] : []),
  ];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: tree });
  return JSON.parse(stdout.trim().split("\n").pop()!) as Sample;
}

export default async function main(): Promise<void> {
  const repeats = Number(process.env.OWNTUNE_BENCH_REPEATS ?? 3);
  const base = process.env.OWNTUNE_BENCH_BASE_TREE;
  const variants: Array<[label: string, tree: string, preload?: string]> = [
    ...(base ? [["base", base] as [string, string]] : []),
    ["this", root],
    ["this + @owntune/model", root, "@owntune/model"],
  ];
  for (const [label, tree, preload] of variants) {
    // Checked before timing: the worker's import graph holds no TensorFlow.js and no @owntune/model entry point.
    const g = importGraph(tree, WORKER);
    const tf = [...g.external.keys()].filter((k) => k.startsWith("@tensorflow/"));
    const model = g.files.filter((f) => f === "packages/model/src/index.ts");
    if (!preload)
      console.log(
        `${label} (${tree}): the worker loads ${g.files.length} workspace modules and ${[...g.external.keys()].join(", ")}; TensorFlow.js ${tf.length ? "YES" : "no"}, @owntune/model's index ${model.length ? "YES" : "no"}`,
      );
    for (const threads of [1, 2]) {
      const runs: Sample[] = [];
      for (let i = 0; i < repeats; i++) runs.push(await measure(tree, threads, preload));
      const best = (k: keyof Sample) => Math.min(...runs.map((r) => r[k]));
      console.log(
        `  ${label}, ${threads} thread${threads > 1 ? "s" : " "}: ready in ${best("startSeconds").toFixed(2)} s, ${best("rssPerThreadMiB").toFixed(0)} MiB RSS per thread`,
      );
    }
  }
}
