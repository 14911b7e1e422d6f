import { readdir, readFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roundToBf16, UserError } from "@owntune/core";
import { WEIGHTS_INDEX_FILE } from "./checkpoint.js";
import { initModel, planShards } from "./init-model.js";
import { randomTensor, randomTensorChunks } from "./init-weights.js";
import { loadModelDir } from "./model-dir.js";
import { expectedTensors } from "./tensors.js";
import { microConfig } from "./test-fixtures.js";

// The real vocabulary (the default tokenizer needs it) on a toy body: 262144 × 16 embeddings.
const config = microConfig({ vocab_size: 262_144 });
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "owntune-init-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function filesOf(dir: string): Promise<Map<string, Buffer>> {
  const names = (await readdir(dir)).sort();
  return new Map(await Promise.all(names.map(async (n) => [n, await readFile(join(dir, n))] as const)));
}

describe("initModel", () => {
  it("writes byte-identical folders for the same seed, and different weights for another seed", async () => {
    const a = await initModel({ outDir: join(root, "a"), config, seed: 7 });
    await initModel({ outDir: join(root, "b"), config, seed: 7 });
    await initModel({ outDir: join(root, "c"), config, seed: 8 });
    expect(a.files).toEqual([
      "config.json",
      "generation_config.json",
      "model.safetensors",
      "owntune-init.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);
    expect(a.isDefaultGemma3).toBe(true);
    const [fa, fb, fc] = await Promise.all(["a", "b", "c"].map((d) => filesOf(join(root, d))));
    expect([...fa!.keys()]).toEqual(a.files);
    for (const [name, bytes] of fa!) expect(bytes.equals(fb!.get(name)!), name).toBe(true);
    expect(fa!.get("model.safetensors")!.equals(fc!.get("model.safetensors")!)).toBe(false);
    expect(fa!.get("config.json")!.equals(fc!.get("config.json")!)).toBe(true);
    // Nothing but the final folders is left behind.
    expect((await readdir(root)).sort()).toEqual(["a", "b", "c"]);
  });

  it("writes a folder loadModelDir reads back: config, bf16 weights equal to randomTensor rounded, tokenizer, eos ids", async () => {
    const outDir = join(root, "load");
    await initModel({ outDir, config, seed: 3 });
    const m = await loadModelDir(outDir);
    try {
      expect(m.config).toEqual(config);
      expect(m.tokenizer.isDefaultGemma3).toBe(true);
      expect(m.generationConfig?.eos_token_id).toEqual([1, 106]);
      expect(m.checkpoint.prefix).toBe("model.");
      for (const spec of expectedTensors(config)) {
        expect(m.checkpoint.dtype(spec.name)).toBe("BF16");
        if (spec.name.startsWith("embed")) continue; // big tables: checked by the sharded test in f32
        expect(Array.from(await m.checkpoint.read(spec.name)), spec.name).toEqual(Array.from(roundToBf16(randomTensor(config, spec, 3))));
      }
    } finally {
      await m.checkpoint.close();
    }
  });

  it("shards above maxShardBytes, with an index that lists every tensor once, and f32 values exactly", async () => {
    const outDir = join(root, "sharded");
    const r = await initModel({ outDir, config, seed: 5, dtype: "f32", maxShardBytes: 8_000_000 });
    const shards = r.files.filter((f) => f.endsWith(".safetensors"));
    expect(shards).toEqual(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"]);
    const index = JSON.parse(await readFile(join(outDir, WEIGHTS_INDEX_FILE), "utf8"));
    expect(index.metadata.total_size).toBe(r.weightBytes);
    expect(Object.keys(index.weight_map).length).toBe(expectedTensors(config).length);
    const m = await loadModelDir(outDir);
    try {
      for (const spec of expectedTensors(config)) {
        const got = await m.checkpoint.read(spec.name);
        expect(Buffer.from(got.buffer).equals(Buffer.from(randomTensor(config, spec, 5).buffer)), spec.name).toBe(true);
      }
    } finally {
      await m.checkpoint.close();
    }
  });

  it("refuses, before writing anything, a model larger than the free disk space", async () => {
    // Within every per-field bound, but petabytes of weights: a typo'd size, caught before the first byte.
    const huge = {
      ...config,
      hidden_size: 131072,
      intermediate_size: 131072,
      num_hidden_layers: 1024,
      layer_types: Array(1024).fill("sliding_attention"),
    };
    const outDir = join(root, "huge");
    await expect(initModel({ outDir, config: huge, seed: 1 })).rejects.toThrow(
      /this model needs \d+ GB of disk, but only \d+(\.\d+)? GB are free there/,
    );
    expect((await readdir(root)).filter((n) => n.includes("huge"))).toEqual([]);
  });

  it("refuses a config whose vocabulary is smaller than the tokenizer's", async () => {
    await expect(initModel({ outDir: join(root, "small"), config: microConfig(), seed: 1 })).rejects.toThrow(UserError);
    await expect(initModel({ outDir: join(root, "small"), config, seed: -1 })).rejects.toThrow(
      "seed must be an integer in [0, 4294967295], got -1",
    );
  });
});

describe("randomTensorChunks", () => {
  it("yields exactly randomTensor's values, for even and odd chunk sizes", () => {
    for (const spec of expectedTensors(config).filter((s) =>
      ["embed_tokens.weight", "layers.0.mlp.up_proj.weight", "layers.0.layer_scalar"].includes(s.name),
    )) {
      const whole = randomTensor(config, spec, 11);
      for (const chunk of [64, 1001, 1 << 22]) {
        const parts = [...randomTensorChunks(config, spec, 11, chunk)];
        const joined = new Float32Array(whole.length);
        let o = 0;
        for (const p of parts) (joined.set(p, o), (o += p.length));
        expect(o).toBe(whole.length);
        expect(Buffer.from(joined.buffer).equals(Buffer.from(whole.buffer)), `${spec.name} chunk ${chunk}`).toBe(true);
      }
    }
  });
});

describe("planShards", () => {
  it("fills shards in order and gives an oversized tensor its own shard", () => {
    const t = (bytes: number) => ({ bytes });
    expect(planShards([t(4), t(4), t(4), t(20), t(1)], 10).map((s) => s.map((x) => x.bytes))).toEqual([[4, 4], [4], [20], [1]]);
  });
});
