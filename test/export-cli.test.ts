// `owntune export`, `owntune verify` and `owntune inspect` on exports, as users run them: the files,
// the verify verdict and exit codes, and located one-line errors for bad input.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { owntuneAsync } from "./owntune.js";

// A toy body on the real vocabulary (so the default tokenizer fits) with sliding/full layers, k=v,
// PLE and KV sharing in the order llama.cpp runs (layer f−1 full, f−2 sliding).
const config = {
  model_type: "gemma4_text",
  vocab_size: 262144,
  hidden_size: 32,
  intermediate_size: 64,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 16,
  global_head_dim: 32,
  attention_k_eq_v: true,
  layer_types: ["sliding_attention", "full_attention", "sliding_attention"],
  sliding_window: 4,
  num_kv_shared_layers: 1,
  hidden_size_per_layer_input: 8,
  final_logit_softcapping: 30,
};

const dir = mkdtempSync(join(tmpdir(), "owntune-export-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelDir = join(dir, "m");
const out = join(dir, "out");

beforeAll(async () => {
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const r = await owntuneAsync([
    "init-model",
    "--out",
    modelDir,
    "--config",
    join(dir, "config.json"),
    "--seed",
    "2",
    "--dtype",
    "f32",
    "--json",
  ]);
  expect(r.code, r.stderr).toBe(0);
}, 300_000);

describe("owntune export", () => {
  it("writes the GGUF and Modelfile, verifies against llama.cpp, and reports it under --json", { timeout: 600_000 }, async () => {
    // One short probe (llama.cpp hands over a 262,144-entry distribution per position: CI time).
    const probes = join(dir, "probes.jsonl");
    writeFileSync(probes, JSON.stringify({ text: "<start_of_turn>user\nHi there!<end_of_turn>\n" }) + "\n");
    const r = await owntuneAsync(["export", "--model", modelDir, "--out", out, "--quant", "f32", "--probes", probes, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as {
      gguf: string;
      verify: { ok: boolean; logprobs: { maxAbsDiff: number }; tokenization: { mismatches: number } };
    };
    expect(result.gguf).toBe(join(out, "model-F32.gguf"));
    expect(result.verify.ok).toBe(true);
    expect(result.verify.tokenization.mismatches).toBe(0);
    expect(existsSync(join(out, "Modelfile"))).toBe(true);
    expect(JSON.parse(readFileSync(join(out, "verify.json"), "utf8")).ok).toBe(true);
  });

  it("is inspected as an export directory and a GGUF file", { timeout: 120_000 }, async () => {
    const d = await owntuneAsync(["inspect", out]);
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain("export directory");
    expect(d.stdout).toMatch(/verify: passed/);
    const g = await owntuneAsync(["inspect", join(out, "model-F32.gguf"), "--json"]);
    expect(g.code, g.stderr).toBe(0);
    const info = JSON.parse(g.stdout) as { kind: string; metadata: Record<string, unknown>; tensors: unknown[] };
    expect(info.kind).toBe("GGUF file");
    expect(info.metadata["general.architecture"]).toBe("gemma4");
    expect(info.metadata["gemma4.block_count"]).toBe(3);
    expect(info.tensors.length).toBeGreaterThan(20);
  });

  it("refuses an unknown quant type with a suggestion (exit 2)", { timeout: 60_000 }, async () => {
    const r = await owntuneAsync(["export", "--model", modelDir, "--out", join(dir, "x"), "--quant", "Q4_KM"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'error: --quant: unknown quant type "Q4_KM" (did you mean "Q4_K_M"?); known: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K',
    );
  });

  it("refuses a KV-sharing order that would crash llama.cpp, before writing anything (exit 2)", { timeout: 120_000 }, async () => {
    const badDir = join(dir, "bad");
    writeFileSync(
      join(dir, "bad.json"),
      JSON.stringify({ ...config, layer_types: ["full_attention", "sliding_attention", "sliding_attention"] }),
    );
    expect((await owntuneAsync(["init-model", "--out", badDir, "--config", join(dir, "bad.json"), "--json"])).code).toBe(0);
    const r = await owntuneAsync(["export", "--model", badDir, "--out", join(dir, "bad-out"), "--quant", "Q8_0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      "layer_types: with num_kv_shared_layers=1, llama.cpp needs layer 1 (f−1) to be full_attention and layer 0 (f−2) sliding_attention",
    );
    expect(existsSync(join(dir, "bad-out", "model-Q8_0.gguf"))).toBe(false);
  });
});

describe("owntune verify", () => {
  it("reports a file that is not GGUF as a located error (exit 2)", { timeout: 60_000 }, async () => {
    const bogus = join(dir, "bogus.gguf");
    writeFileSync(bogus, "not a gguf at all");
    const r = await owntuneAsync(["verify", "--gguf", bogus, "--model", modelDir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: ${bogus}: not a GGUF file: magic is "not " (0x20746f6e), expected "GGUF"`);
  });
});
