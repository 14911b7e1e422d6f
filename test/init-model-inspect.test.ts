// `owntune init-model` and `owntune inspect` as users run them: exit codes, located messages, output.
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { owntuneAsync, TOY_MODEL_CONFIG } from "./owntune.js";
import { tempDir } from "@owntune/core/testing";

let dir: string;
beforeAll(() => {
  dir = tempDir("init-cli");
  writeFileSync(join(dir, "micro.json"), JSON.stringify(TOY_MODEL_CONFIG, null, 2));
  writeFileSync(join(dir, "bad.json"), JSON.stringify({ ...TOY_MODEL_CONFIG, hidden_size: -5 }, null, 2));
});

describe("owntune init-model", () => {
  it("writes a model folder from --config that inspect then summarises (human and --json)", async () => {
    const out = join(dir, "m");
    const r = await owntuneAsync([
      "init-model",
      "--out",
      out,
      "--config",
      join(dir, "micro.json"),
      "--seed",
      "4",
      "--dtype",
      "f32",
      "--json",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ out, seed: 4, dtype: "f32", isDefaultGemma3: true });
    expect(readdirSync(out).sort()).toEqual([
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "owntune-init.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);

    const [human, json, file] = await Promise.all([
      owntuneAsync(["inspect", out]),
      owntuneAsync(["inspect", out, "--json"]),
      owntuneAsync(["inspect", join(out, "model.safetensors"), "--json"]),
    ]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("weights match config.json");
    expect(JSON.parse(json.stdout)).toMatchObject({
      kind: "model directory",
      config: { layers: 2, hidden_size: 16, vocab_size: 262144 },
      weights: { files: ["model.safetensors"], prefix: "model.", matchesConfig: true, dtypes: { F32: 2 + 2 * 14 } }, // embed + norm, 14 per layer
      tokenizer: { vocabSize: 262144, isDefaultGemma3: true, endOfGenerationIds: [1, 106] },
    });
    const st = JSON.parse(file.stdout);
    expect(st.kind).toBe("safetensors file");
    expect(st.tensors[0]).toEqual({ name: "model.embed_tokens.weight", dtype: "F32", shape: [262144, 16], bytes: 262144 * 16 * 4 });
  });

  it("exits 2 with the file and line for a bad --config, writing nothing", async () => {
    const out = join(dir, "bad-out");
    const r = await owntuneAsync(["init-model", "--out", out, "--config", "bad.json"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("error: bad.json:4: hidden_size: expected a positive number, got -5");
    expect(readdirSync(dir).filter((n) => n.includes("bad-out"))).toEqual([]);
  });

  it("exits 2 for an unknown preset with a suggestion, and for --preset with --config", async () => {
    const [unknown, both, neither] = await Promise.all([
      owntuneAsync(["init-model", "--out", join(dir, "x"), "--preset", "gemma4-tinny"]),
      owntuneAsync(["init-model", "--out", join(dir, "x"), "--preset", "gemma4-tiny", "--config", "micro.json"], dir),
      owntuneAsync(["init-model", "--out", join(dir, "x")]),
    ]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr.trim()).toBe(
      'error: --preset: unknown preset "gemma4-tinny" (did you mean "gemma4-tiny"?); known: gemma4-tiny, gemma4-e2b, gemma4-e4b, gemma4-31b',
    );
    expect(both.code).toBe(2);
    expect(neither.code).toBe(2);
    expect(neither.stderr.trim()).toBe(
      "error: give exactly one of --preset NAME or --config config.json; presets: gemma4-tiny, gemma4-e2b, gemma4-e4b, gemma4-31b",
    );
  });

  it("exits 2 for a bad --seed or --dtype", async () => {
    const [seed, dtype] = await Promise.all([
      owntuneAsync(["init-model", "--out", join(dir, "x"), "--preset", "gemma4-tiny", "--seed", "-3"]),
      owntuneAsync(["init-model", "--out", join(dir, "x"), "--preset", "gemma4-tiny", "--dtype", "fp8"]),
    ]);
    expect(seed.code).toBe(2);
    expect(seed.stderr.trim()).toBe('error: --seed: expected an integer from 0 to 4294967295, got "-3"');
    expect(dtype.code).toBe(2);
    expect(dtype.stderr).toContain("Allowed choices are bf16, f32");
  });
});

describe("owntune inspect", () => {
  it("exits 2 for a path it cannot inspect or that does not exist", async () => {
    const [json, missing] = await Promise.all([
      owntuneAsync(["inspect", join(dir, "micro.json")]),
      owntuneAsync(["inspect", join(dir, "nope")]),
    ]);
    expect(json.code).toBe(2);
    // Other packages register more inspectors after these two.
    expect(json.stderr.trim()).toMatch(
      new RegExp(
        `^error: ${join(dir, "micro.json")}: owntune cannot inspect this: a file that is not \\.safetensors or \\.gguf \\(it knows: model directory, safetensors file[^)]*\\)$`,
      ),
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe(`error: ${join(dir, "nope")}: no such file or directory`);
  });
});
