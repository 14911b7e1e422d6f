import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roundToBf16, UserError, writeSafetensors } from "@owntune/core";
import { openCheckpoint, shardFileName, WEIGHTS_INDEX_FILE } from "./checkpoint.js";
import { expectedTensors } from "./tensors.js";
import { microConfig, writeMicroWeights } from "./test-fixtures.js";

const config = microConfig();
let root: string;
let n = 0;
async function newDir(): Promise<string> {
  const d = join(root, `m${n++}`);
  await mkdir(d);
  return d;
}
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "owntune-ckpt-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<string> {
  try {
    const cp = await p;
    await (cp as { close(): Promise<void> }).close();
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return e.format();
  }
  throw new Error("expected a UserError");
}

/** Writes the micro model as shards of `groups` tensors each, plus an index; returns the values. */
async function writeSharded(dir: string, perShard: number, mutateIndex?: (map: Record<string, string>) => void) {
  const specs = expectedTensors(config);
  const groups: (typeof specs)[] = [];
  for (let i = 0; i < specs.length; i += perShard) groups.push(specs.slice(i, i + perShard));
  const weightMap: Record<string, string> = {};
  let values = new Map<string, Float32Array>();
  for (const [g, group] of groups.entries()) {
    const file = shardFileName(g, groups.length);
    const names = new Set(group.map((s) => s.name));
    const v = await writeMicroWeights(join(dir, file), config, { dtype: "BF16", only: (name) => names.has(name) });
    values = new Map([...values, ...v]);
    for (const s of group) weightMap[`model.${s.name}`] = file;
  }
  mutateIndex?.(weightMap);
  await writeFile(join(dir, WEIGHTS_INDEX_FILE), JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }));
  return { values, files: groups.map((_, g) => shardFileName(g, groups.length)) };
}

describe("openCheckpoint", () => {
  it("reads a single-file text-only checkpoint: every tensor equals what was written", async () => {
    const dir = await newDir();
    const values = await writeMicroWeights(join(dir, "model.safetensors"), config);
    const cp = await openCheckpoint(dir, { config });
    try {
      expect(cp.prefix).toBe("model.");
      expect(cp.multimodal).toBe(false);
      expect([...cp.tensors.keys()]).toEqual(expectedTensors(config).map((t) => t.name));
      for (const [name, want] of values) {
        expect(cp.shape(name)).toEqual(expectedTensors(config).find((t) => t.name === name)!.shape);
        expect(Array.from(await cp.read(name)), name).toEqual(Array.from(want));
      }
    } finally {
      await cp.close();
    }
  });

  it("reads sharded bf16 checkpoints through the index with the same values as one file", async () => {
    const single = await newDir();
    await writeMicroWeights(join(single, "model.safetensors"), config, { dtype: "BF16" });
    const sharded = await newDir();
    const { values, files } = await writeSharded(sharded, 9);
    expect(files.length).toBeGreaterThan(2);
    const a = await openCheckpoint(single, { config });
    const b = await openCheckpoint(sharded, { config });
    try {
      expect(b.files.map((f) => f.slice(sharded.length + 1))).toEqual(files);
      for (const name of a.tensors.keys()) {
        const got = await b.read(name);
        expect(Array.from(got), name).toEqual(Array.from(await a.read(name)));
        expect(Array.from(got), name).toEqual(Array.from(roundToBf16(values.get(name)!)));
      }
      // Shards hold different tensors: each tensor is read from its own shard.
      expect(new Set([...b.tensors.values()].map((t) => t.file)).size).toBe(files.length);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("finds the text model under model.language_model. and skips vision/audio towers and embedders", async () => {
    const dir = await newDir();
    const values = await writeMicroWeights(join(dir, "model.safetensors"), config, {
      prefix: "model.language_model.",
      dtype: "BF16",
      extra: [
        { name: "model.vision_tower.encoder.layers.0.self_attn.q_proj.weight", shape: [8, 8] },
        { name: "model.audio_tower.conformer.0.ffw_layer_start.weight", shape: [4, 4] },
        { name: "model.embed_vision.embedding_projection.weight", shape: [16, 8] },
        { name: "model.embed_audio.embedding_projection.weight", shape: [16, 4] },
        { name: "lm_head.weight", shape: [48, 16] },
      ],
    });
    const cp = await openCheckpoint(dir, { config });
    try {
      expect(cp.prefix).toBe("model.language_model.");
      expect(cp.multimodal).toBe(true);
      expect(cp.skipped).toEqual([
        "model.vision_tower.encoder.layers.0.self_attn.q_proj.weight",
        "model.audio_tower.conformer.0.ffw_layer_start.weight",
        "model.embed_vision.embedding_projection.weight",
        "model.embed_audio.embedding_projection.weight",
      ]);
      expect(cp.has("lm_head.weight")).toBe(true); // tied copy: kept, ignorable
      const name = "layers.1.self_attn.q_proj.weight";
      expect(Array.from(await cp.read(name))).toEqual(Array.from(roundToBf16(values.get(name)!)));
      expect(Array.from(await cp.readRows("embed_tokens.weight", 5, 2))).toEqual(
        Array.from(roundToBf16(values.get("embed_tokens.weight")!).subarray(5 * 16, 7 * 16)),
      );
    } finally {
      await cp.close();
    }
  });

  it("accepts the unused K/V weights of KV-shared layers", async () => {
    const dir = await newDir();
    await writeMicroWeights(join(dir, "model.safetensors"), config, {
      extra: [
        { name: "model.layers.3.self_attn.k_proj.weight", shape: [16, 16] },
        { name: "model.layers.3.self_attn.k_norm.weight", shape: [16] },
      ],
    });
    const cp = await openCheckpoint(dir, { config });
    await cp.close();
  });
});

describe("openCheckpoint reports weights that do not fit the config", () => {
  it("names a mis-shaped tensor with its shape and the config's", async () => {
    const dir = await newDir();
    const up = "layers.3.mlp.up_proj.weight"; // double-wide on this KV-shared layer: [64, 16]
    await writeMicroWeights(join(dir, "model.safetensors"), config, {
      only: (n) => n !== up,
      extra: [{ name: `model.${up}`, shape: [16, 64] }],
    });
    expect(await errorOf(openCheckpoint(dir, { config }))).toBe(
      `${join(dir, "model.safetensors")}: tensor model.layers.3.mlp.up_proj.weight has shape [16, 64], config wants [64, 16]; does config.json belong to these weights?`,
    );
  });

  it("lists the first problems and counts the rest when the config does not match at all", async () => {
    const dir = await newDir();
    // Two fields differ: no single one explains the mismatches, so each is listed.
    const other = microConfig({ hidden_size: 24, intermediate_size: 40 });
    await writeMicroWeights(join(dir, "model.safetensors"), other);
    const otherShapes = new Map(expectedTensors(other).map((t) => [t.name, t.shape.join()]));
    const mismatched = expectedTensors(config).filter((t) => otherShapes.get(t.name) !== t.shape.join()).length;
    const lines = (await errorOf(openCheckpoint(dir, { config }))).split("\n");
    expect(lines.length).toBe(13);
    expect(lines[0]).toBe(`${join(dir, "model.safetensors")}: tensor model.embed_tokens.weight has shape [48, 24], config wants [48, 16]`);
    expect(lines[12]).toBe(`… and ${mismatched - 12} more problems with these weights; does config.json belong to these weights?`);
  });

  it.each([
    ["head_dim", { head_dim: 4 }],
    ["hidden_size", { hidden_size: 24 }],
    ["num_key_value_heads", { num_key_value_heads: 2 }],
  ] as const)("names a wrong %s as the one cause of every misshapen tensor, at its line in config.json", async (field, made) => {
    const dir = await newDir();
    const other = microConfig(made);
    await writeMicroWeights(join(dir, "model.safetensors"), other);
    const configFile = join(dir, "config.json");
    const json = JSON.stringify(config, null, 2);
    await writeFile(configFile, json);
    const line = json.split("\n").findIndex((l) => l.startsWith(`  "${field}":`)) + 1;
    const otherShapes = new Map(expectedTensors(other).map((t) => [t.name, t.shape.join()]));
    const mismatched = expectedTensors(config).filter((t) => otherShapes.get(t.name) !== t.shape.join()).length;
    expect(mismatched).toBeGreaterThan(1);
    const message = await errorOf(openCheckpoint(dir, { config, configFile }));
    expect(message.split("\n")).toHaveLength(1);
    expect(message).toMatch(
      new RegExp(
        `^${configFile}:${line}: ${field}: ${config[field]} does not fit these weights, which were made with ${field} ${made[field as keyof typeof made]} \\(${mismatched} tensors differ`,
      ),
    );
  });

  it("names an extra tensor and a missing one", async () => {
    const dir = await newDir();
    await writeMicroWeights(join(dir, "model.safetensors"), config, {
      only: (n) => n !== "norm.weight",
      extra: [{ name: "model.layers.4.input_layernorm.weight", shape: [16] }],
    });
    const file = join(dir, "model.safetensors");
    expect(await errorOf(openCheckpoint(dir, { config }))).toBe(
      `${file}: tensor model.norm.weight is missing; config wants shape [16]\n` +
        `${file}: tensor model.layers.4.input_layernorm.weight with shape [16] is not part of a model with this config; does config.json belong to these weights?`,
    );
  });

  it("treats tensors outside model. in a text-only checkpoint as extra", async () => {
    const dir = await newDir();
    await writeMicroWeights(join(dir, "model.safetensors"), config, { extra: [{ name: "vision.proj", shape: [2] }] });
    expect(await errorOf(openCheckpoint(dir, { config }))).toBe(
      `${join(dir, "model.safetensors")}: tensor vision.proj is outside the text model (model.); does config.json belong to these weights?`,
    );
  });

  it("refuses integer (quantized) text tensors", async () => {
    const dir = await newDir();
    const file = join(dir, "model.safetensors");
    const header = JSON.stringify({ "model.embed_tokens.weight": { dtype: "I8", shape: [2], data_offsets: [0, 2] } });
    const buf = Buffer.alloc(8 + header.length + 2);
    buf.writeBigUInt64LE(BigInt(header.length));
    buf.write(header, 8);
    await writeFile(file, buf);
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${file}: tensor model.embed_tokens.weight has dtype I8; owntune reads F32, F16, BF16 weights; quantized checkpoints are not supported as a base model; use the bf16 release`,
    );
  });

  it("says what is missing in a folder without weights", async () => {
    const dir = await newDir();
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${dir}: no model.safetensors or model.safetensors.index.json; expected a model directory in Hugging Face layout (try \`owntune init-model\`)`,
    );
  });

  it("says when no text embedding is found", async () => {
    const dir = await newDir();
    await writeSafetensors(
      join(dir, "model.safetensors"),
      [{ name: "encoder.weight", dtype: "F32", shape: [1] }],
      () => new Float32Array(1),
    );
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${join(dir, "model.safetensors")}: no text-model embedding found (looked for model.language_model.embed_tokens.weight, language_model.model.embed_tokens.weight, model.embed_tokens.weight); is this a Gemma 4 checkpoint?`,
    );
  });
});

describe("sharded index validation", () => {
  it("reports a listed shard that does not exist", async () => {
    const dir = await newDir();
    await writeSharded(dir, 40, (m) => (m["model.norm.weight"] = "model-00009-of-00009.safetensors"));
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${join(dir, WEIGHTS_INDEX_FILE)}: shard model-00009-of-00009.safetensors (listed for 1 tensors, e.g. model.norm.weight) does not exist`,
    );
  });

  it("reports a tensor listed in a shard that does not hold it (so it is in no shard the index names)", async () => {
    const dir = await newDir();
    const { files } = await writeSharded(dir, 40, (m) => (m["model.norm.weight"] = shardFileName(0, 2)));
    expect(files.length).toBe(2);
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${join(dir, WEIGHTS_INDEX_FILE)}: tensor model.norm.weight is listed in model-00001-of-00002.safetensors, which does not hold it`,
    );
  });

  it("reports a tensor held by two shards", async () => {
    const dir = await newDir();
    await writeSharded(dir, 40);
    // Rewrite shard 2 so it also holds shard 1's first tensor.
    const specs = expectedTensors(config);
    const second = new Set(
      specs
        .slice(40)
        .map((s) => s.name)
        .concat("embed_tokens.weight"),
    );
    await writeMicroWeights(join(dir, shardFileName(1, 2)), config, { dtype: "BF16", only: (n) => second.has(n) });
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${join(dir, WEIGHTS_INDEX_FILE)}: tensor model.embed_tokens.weight is in both model-00001-of-00002.safetensors and model-00002-of-00002.safetensors; each tensor must be in exactly one shard`,
    );
  });

  it("reports a tensor in a shard that the index does not list", async () => {
    const dir = await newDir();
    await writeSharded(dir, 40, (m) => delete m["model.norm.weight"]);
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${join(dir, shardFileName(1, 2))}: tensor model.norm.weight is not listed in model.safetensors.index.json; the index and the shards disagree`,
    );
  });

  it("refuses shard names that leave the model directory", async () => {
    const dir = await newDir();
    await writeSharded(dir, 40, (m) => (m["model.norm.weight"] = "../elsewhere.safetensors"));
    expect(await errorOf(openCheckpoint(dir))).toBe(
      `${join(dir, WEIGHTS_INDEX_FILE)}: weight_map.model.norm.weight: expected a .safetensors file name in the model directory, got "../elsewhere.safetensors"`,
    );
  });
});
