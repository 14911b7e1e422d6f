import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_TOKENIZER_WARNING } from "@owntune/tokenizer";
import { UserError } from "@owntune/core";
import { configToJson } from "./config.js";
import { loadModelDir, readGenerationConfig } from "./model-dir.js";
import { microConfig, writeMicroWeights } from "./test-fixtures.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "owntune-mdir-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("loadModelDir", () => {
  it("loads a multimodal-layout folder: text_config, model.language_model. weights, generation_config eos ids, fallback tokenizer", async () => {
    const dir = join(root, "mm");
    await mkdir(dir);
    const config = microConfig({ vocab_size: 262_144 });
    const { architectures: _a, ...text } = configToJson(config);
    await writeFile(
      join(dir, "config.json"),
      JSON.stringify({
        architectures: ["Gemma4ForConditionalGeneration"],
        model_type: "gemma4",
        text_config: text,
        vision_config: { hidden_size: 8 },
      }),
    );
    await writeFile(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 2, eos_token_id: [1, 106], top_k: 64 }));
    await writeMicroWeights(join(dir, "model.safetensors"), config, {
      prefix: "model.language_model.",
      dtype: "BF16",
      extra: [{ name: "model.vision_tower.patch_embedder.weight", shape: [4, 4] }],
    });
    const m = await loadModelDir(dir);
    try {
      expect(m.config.hidden_size).toBe(16);
      expect(m.checkpoint.multimodal).toBe(true);
      expect(m.checkpoint.skipped).toEqual(["model.vision_tower.patch_embedder.weight"]);
      expect(m.generationConfig?.eos_token_id).toEqual([1, 106]);
      expect(m.generationConfig?.raw.top_k).toBe(64);
      expect(m.tokenizer.isDefaultGemma3).toBe(true);
      expect(m.tokenizer.endOfGenerationIds).toEqual([1, 106]);
      expect(m.warnings[0]).toBe(DEFAULT_TOKENIZER_WARNING);
      expect(m.warnings[1]).toBe(
        "the tokenizer has 1 added token(s) past vocab_size 262144 (<image_soft_token> = 262144); text containing them cannot be fed to the model",
      );
    } finally {
      await m.checkpoint.close();
    }
  });

  it("refuses a tokenizer larger than the embedding table", async () => {
    const dir = join(root, "small-vocab");
    await mkdir(dir);
    const config = microConfig();
    await writeFile(join(dir, "config.json"), JSON.stringify(configToJson(config)));
    await writeMicroWeights(join(dir, "model.safetensors"), config);
    await expect(loadModelDir(dir)).rejects.toThrow(
      expect.objectContaining({
        message: "tokenizer.json has 262144 vocabulary entries but config.json vocab_size is 48",
        file: join(dir, "config.json"),
      }),
    );
  });

  it("names a missing folder and a missing config.json", async () => {
    await expect(loadModelDir(join(root, "nope"))).rejects.toThrow(UserError);
    const dir = join(root, "empty");
    await mkdir(dir);
    await expect(loadModelDir(dir)).rejects.toThrow(expect.objectContaining({ file: join(dir, "config.json") }));
  });
});

describe("readGenerationConfig", () => {
  it("accepts a single eos id and reports a bad one with its field", async () => {
    const dir = join(root, "gen");
    await mkdir(dir);
    await writeFile(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: 1 }));
    expect((await readGenerationConfig(dir))?.eos_token_id).toEqual([1]);
    await writeFile(join(dir, "generation_config.json"), JSON.stringify({ eos_token_id: "x" }));
    const e = await readGenerationConfig(dir).catch((x: unknown) => x);
    expect((e as UserError).format()).toBe(`${join(dir, "generation_config.json")}: eos_token_id: expected a token id, got "x"`);
    expect(await readGenerationConfig(root)).toBeUndefined();
  });
});
