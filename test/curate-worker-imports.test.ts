// Curate's worker threads load only what per-example work needs: never TensorFlow.js, never the model
// package (BENCHMARKS.md §curate workers: what either would cost each thread in start-up and memory).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { importChain, importGraph } from "../bench/import-graph.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("curate's worker thread", () => {
  const graph = importGraph(root, "packages/curate/src/worker.ts");

  it("imports no TensorFlow.js, directly or through any module it loads", () => {
    const tf = [...graph.external]
      .filter(([name]) => name.startsWith("@tensorflow/"))
      .map(([name, by]) => `${name} via ${importChain(graph, by).join(" → ")}`);
    expect(tf).toEqual([]);
  });

  it("loads nothing of @owntune/model, @owntune/lora or @owntune/export", () => {
    expect(graph.files.filter((f) => /^packages\/(model|lora|export)\//.test(f))).toEqual([]);
    expect(graph.files).toContain("packages/curate/src/processor.ts"); // the walk did reach the worker's own imports
  });
});
