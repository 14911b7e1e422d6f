// One config for the whole workspace: a project per package plus the end-to-end tests in test/.
// Tests run the TypeScript sources directly through the "@owntune/source" export condition.
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";
import { MissingOracles } from "./test/missing-oracles.js";

const source = { resolve: { conditions: ["@owntune/source"] }, ssr: { resolve: { conditions: ["@owntune/source"] } } };
// Test processes append the oracles they missed here; the reporter prints them in one line at the end.
const oracleLog = join(tmpdir(), `owntune-missing-oracles-${process.pid}.jsonl`);
const packages = ["core", "tokenizer", "ggml", "model", "curate", "lora", "export", "cli"];

/**
 * The files that take minutes, longest first (measured on 2 cores). Vitest orders by the previous
 * run's durations, which a clean CI clone does not have; started last, the quickstart alone would
 * add its 5 minutes to the wall time. Every other file follows in Vitest's own order.
 */
const LONGEST_FIRST = [
  "test/quickstart.test.ts",
  "packages/export/src/verify.test.ts",
  "test/train-cli.test.ts",
  "packages/lora/src/fine-tune.test.ts",
  "packages/export/src/export-dir.test.ts",
  "test/score-generate-cli.test.ts",
  "packages/model/src/gemma4.test.ts",
  "test/export-cli.test.ts",
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((path) => f.moduleId.endsWith(`/${path}`));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Vitest's default in a run is one worker fewer than the cores (1 on 2 cores): ask for 2.
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
    // Test files run in parallel on 2 cores; a second wasm or ggml thread per process only oversubscribes
    // them (measured: the wasm pool collapses to 1–3 GFLOP/s; ggml's 2-thread graphs ran 2–3× slower than
    // one thread under load). Child processes (CLI tests) inherit this.
    env: { OWNTUNE_WASM_THREADS: "1", OWNTUNE_GGML_THREADS: "1", OWNTUNE_ORACLE_LOG: oracleLog },
    reporters: ["default", new MissingOracles(oracleLog)],
    projects: [
      // extends: true — projects inherit testTimeout/hookTimeout/pool from this root config.
      ...packages.map((name) => ({
        ...source,
        extends: true as const,
        test: { name, root: `packages/${name}`, include: ["src/**/*.test.ts"] },
      })),
      { ...source, extends: true as const, test: { name: "e2e", root: "test", include: ["**/*.test.ts"] } },
    ],
  },
});
