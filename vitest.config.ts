// One config for the whole workspace: a project per package plus the end-to-end tests in test/.
// Tests run the TypeScript sources directly through the "@owntune/source" export condition.
import { defineConfig } from "vitest/config";

const source = { resolve: { conditions: ["@owntune/source"] }, ssr: { resolve: { conditions: ["@owntune/source"] } } };
const packages = ["ggml", "model", "curate", "lora", "export", "cli"];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: "forks",
    // Test files run in parallel on 2 cores; a second wasm or ggml thread per process only oversubscribes
    // them (measured: the wasm pool collapses to 1–3 GFLOP/s; ggml's 2-thread graphs ran 2–3× slower than
    // one thread under load). Child processes (CLI tests) inherit this.
    env: { OWNTUNE_WASM_THREADS: "1", OWNTUNE_GGML_THREADS: "1" },
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
