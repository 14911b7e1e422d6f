// `owntune score` and `owntune generate` as users run them: output shapes, adapters, exit codes and
// located messages. The numbers themselves are checked against the float64 reference in
// packages/model (score.test.ts); here the CLI must give what the library gives.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate, initBackend, loadGemma4, loadModelDir, scoreIds } from "@owntune/model";
import { loraTensorsFrom, randomAdapter, writePeftAdapter } from "@owntune/lora";
import { owntuneAsync as owntuneAsyncAnyThreads, TOY_MODEL_CONFIG } from "./owntune.js";

// Several CLI processes run at once here: one wasm thread each, so they do not fight over the cores.
const owntuneAnyEnv = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  owntuneAsyncAnyThreads(args, undefined, { OWNTUNE_WASM_THREADS: "1", OWNTUNE_GGML_THREADS: "1", ...env });
const owntuneAsync = (args: readonly string[]) => owntuneAnyEnv(args);

// The toy body with per-layer embeddings and soft-capping.
const config = { ...TOY_MODEL_CONFIG, hidden_size_per_layer_input: 4, final_logit_softcapping: 30 };

let dir: string;
let modelDir: string;
let adapterDir: string;
let input: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "owntune-score-cli-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  modelDir = join(dir, "m");
  const r = await owntuneAsync([
    "init-model",
    "--out",
    modelDir,
    "--config",
    join(dir, "config.json"),
    "--seed",
    "3",
    "--dtype",
    "f32",
    "--json",
  ]);
  expect(r.code, r.stderr).toBe(0);
  const { config: parsed } = await loadModelDir(modelDir);
  adapterDir = join(dir, "adapter");
  await writePeftAdapter(adapterDir, randomAdapter(parsed, { rank: 2, seed: 5, targets: ["q_proj", "v_proj", "down_proj"] }));
  input = join(dir, "rows.jsonl");
  writeFileSync(
    input,
    [JSON.stringify({ text: "The quick brown fox jumps over the lazy dog." }), "", JSON.stringify({ ids: [2, 651, 1590, 9, 77, 4] })].join(
      "\n",
    ) + "\n",
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("owntune score", () => {
  it("prints one line per row with ids, log-probs and mean NLL, as the library computes them (with and without --adapter)", async () => {
    const [plain, adapted] = await Promise.all([
      owntuneAsync(["score", "--model", modelDir, "--input", input, "--json"]),
      owntuneAsync(["score", "--model", modelDir, "--adapter", adapterDir, "--input", input, "--json"]),
    ]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(adapted.code, adapted.stderr).toBe(0);
    expect(plain.stderr).toMatch(/^backend: (wasm|tfjs-node) \(/);
    const rows = plain.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ids: number[]; logprobs: number[]; nll: number });
    const rowsA = adapted.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { ids: number[]; logprobs: number[]; nll: number });
    expect(rows).toHaveLength(2);
    expect(rows[0]!.ids[0]).toBe(2); // BOS, as the tokenizer adds it
    expect(rows[1]!.ids).toEqual([2, 651, 1590, 9, 77, 4]);

    await initBackend({ threads: 1 });
    const md = await loadModelDir(modelDir);
    const model = await loadGemma4(md.config, md.checkpoint);
    await md.checkpoint.close();
    const { readPeftAdapter } = await import("@owntune/lora");
    const adapter = await readPeftAdapter(adapterDir, md.config);
    const lora = loraTensorsFrom(adapter.weights.pairs, adapter.weights.scale);
    for (const [i, row] of rows.entries()) {
      const want = scoreIds(model, row.ids);
      expect(row.logprobs).toHaveLength(row.ids.length - 1);
      expect(Math.max(...row.logprobs.map((v, t) => Math.abs(v - want.logprobs[t]!)))).toBeLessThan(1e-5);
      expect(row.nll).toBeCloseTo(-row.logprobs.reduce((a, b) => a + b, 0) / row.logprobs.length, 5);
      const wantA = scoreIds(model, row.ids, { lora });
      expect(Math.abs(rowsA[i]!.nll - wantA.nll)).toBeLessThan(1e-5);
      expect(Math.abs(rowsA[i]!.nll - row.nll)).toBeGreaterThan(1e-3);
    }
    model.dispose();
  });

  it("names the file and line of a malformed row, and a bad backend, with exit code 2", async () => {
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, `{"text": "fine"}\n{"ids": [2, 5]}\n{"ids": [2, -1]}\n`);
    const notJson = join(dir, "notjson.jsonl");
    writeFileSync(notJson, `{"text": "fine"}\n\n{text: nope}\n`);
    const [r1, r2, r3] = await Promise.all([
      owntuneAsync(["score", "--model", modelDir, "--input", bad, "--json"]),
      owntuneAsync(["score", "--model", modelDir, "--input", notJson]),
      owntuneAsync(["score", "--model", modelDir, "--input", input, "--backend", "gpu"]),
    ]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toContain(`error: ${bad}:3: ids: ids[1] = -1 is not a token id of this model (0 … 262143)\n`);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(new RegExp(`error: ${notJson.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:3: not valid JSON \\(`));
    expect(r3.code).toBe(2);
    expect(r3.stderr).toBe(`error: --backend: unknown backend "gpu"; use one of: tfjs-node, wasm, cpu\n`);
  });
});

describe("owntune score kernels", () => {
  it("runs native by default, tfjs when forced or when the ggml libraries are missing, with the same log-probabilities", async () => {
    const noGgml = join(dir, "no-ggml"); // an empty folder: what a machine without node-llama-cpp's binaries looks like
    mkdirSync(noGgml);
    const score = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      owntuneAnyEnv(["score", "--model", modelDir, "--input", input, "--json", ...args], env);
    const [native, tfjs, missing, forced, q8, bad] = await Promise.all([
      score([]),
      score(["--kernels", "tfjs"]),
      score([], { OWNTUNE_GGML_DIR: noGgml }),
      score(["--kernels", "native"], { OWNTUNE_GGML_DIR: noGgml }),
      score(["--base-dtype", "q8_0"]),
      score(["--base-dtype", "q3"]),
    ]);
    for (const r of [native, tfjs, missing, q8]) expect(r.code, r.stderr).toBe(0);
    expect(native.stderr).toMatch(
      /\nkernels: native \(ggml v\S+, CPU \w+, \d+ threads?; first choice\), base f32, Wᵀ none, embedding native-f32\n/,
    );
    expect(tfjs.stderr).toContain("\nkernels: tfjs (forced), base f32 (device), embedding device\n");
    expect(missing.stderr).toContain(
      `\nkernels: tfjs (native kernels unavailable: no libggml-base.so in ${noGgml}), base f32 (device), embedding device\n`,
    );
    expect(q8.stderr).toMatch(/, base q8_0, Wᵀ none, embedding native-bf16\n/);
    const logprobs = (r: { stdout: string }) =>
      r.stdout
        .trim()
        .split("\n")
        .flatMap((l) => (JSON.parse(l) as { logprobs: number[] }).logprobs);
    const want = logprobs(native);
    const diff = (r: { stdout: string }) => Math.max(...logprobs(r).map((v, i) => Math.abs(v - want[i]!)));
    expect(diff(tfjs)).toBeLessThan(1e-4);
    expect(diff(missing)).toBeLessThan(1e-4);
    expect(diff(q8)).toBeGreaterThan(1e-5); // held as Q8_0 (bf16 embedding): close, not equal
    expect(diff(q8)).toBeLessThan(0.2);
    expect(forced.code).toBe(2);
    expect(forced.stderr).toBe(
      `error: --kernels: native kernels unavailable: no libggml-base.so in ${noGgml}; use --kernels tfjs (or unset it) to run on TensorFlow.js\n`,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`error: --base-dtype: unknown base dtype "q3"; use one of: auto, f32, bf16, q8_0, q4_0, q4_k\n`);
  });
});

describe("owntune generate", () => {
  it("decodes greedily by default (as the library does) and reproducibly with a seed", async () => {
    const args = ["generate", "--model", modelDir, "--prompt", "Once upon a time", "--max-tokens", "6", "--json"];
    const [g1, s1, s2] = await Promise.all([
      owntuneAsync(args),
      owntuneAsync([...args, "--temperature", "0.9", "--top-k", "50", "--top-p", "0.95", "--seed", "7"]),
      owntuneAsync([...args, "--temperature", "0.9", "--top-k", "50", "--top-p", "0.95", "--seed", "7"]),
    ]);
    for (const r of [g1, s1, s2]) expect(r.code, r.stderr).toBe(0);
    const a = JSON.parse(g1.stdout);
    expect(a.ids.length).toBeGreaterThan(0);
    expect(a.ids.length).toBeLessThanOrEqual(6);
    expect(a.seed).toBeNull();
    await initBackend({ threads: 1 });
    const md = await loadModelDir(modelDir);
    const model = await loadGemma4(md.config, md.checkpoint);
    await md.checkpoint.close();
    const lib = await generate(model, md.tokenizer.encode("Once upon a time"), { maxTokens: 6, stopIds: md.tokenizer.endOfGenerationIds });
    model.dispose();
    expect(a.ids).toEqual(lib.ids);
    const b = JSON.parse(s1.stdout);
    expect(b.seed).toBe(7);
    expect(JSON.parse(s2.stdout).ids).toEqual(b.ids);
  });

  it("streams text without --json and rejects bad sampling flags", async () => {
    const [h, bad] = await Promise.all([
      owntuneAsync(["generate", "--model", modelDir, "--adapter", adapterDir, "--prompt", "Hi", "--max-tokens", "3"]),
      owntuneAsync(["generate", "--model", modelDir, "--prompt", "Hi", "--top-p", "1.5"]),
    ]);
    expect(h.code, h.stderr).toBe(0);
    expect(h.stderr).toMatch(/adapter: \d+ LoRA pairs, r=2/);
    expect(h.stderr).toMatch(/3 tokens \(max-tokens\)|tokens \(stop-id\)/);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`error: --top-p: expected a number in (0, 1], got "1.5"\n`);
  });
});
