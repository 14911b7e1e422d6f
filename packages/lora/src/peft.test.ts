// PEFT adapter folders: round trip, the multimodal name layout, and every way an adapter can fail
// to fit its base model, each an exact UserError naming the tensor.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError, writeSafetensors } from "@owntune/core";
import { gemma4Tiny } from "@owntune/model";
import { afterAll, describe, expect, it } from "vitest";
import { mergeLora } from "./merge.js";
import { loraScale, parsePeftTensorName, readPeftAdapter, writePeftAdapter } from "./peft.js";
import { randomAdapter } from "./random-adapter.js";

const root = mkdtempSync(join(tmpdir(), "owntune-peft-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const config = gemma4Tiny();
let n = 0;
const fresh = () => join(root, `a${n++}`);

/** A hand-written adapter folder: `config` JSON and tensors by stored name. */
async function handMade(cfg: Record<string, unknown>, tensors: Array<{ name: string; shape: number[] }>): Promise<string> {
  const dir = fresh();
  await writeSafetensors(
    join(dir, "adapter_model.safetensors"),
    tensors.map((t) => ({ ...t, dtype: "F32" as const })),
    (t) => new Float32Array(t.shape[0]! * t.shape[1]!).fill(0.25),
  );
  writeFileSync(join(dir, "adapter_config.json"), JSON.stringify(cfg));
  return dir;
}

const q0 = "base_model.model.model.layers.0.self_attn.q_proj";

async function errorOf(p: Promise<unknown>): Promise<UserError> {
  const e = await p.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  return e as UserError;
}

describe("PEFT adapter folders", () => {
  it("round-trips a random adapter exactly, with PEFT's names and config fields", async () => {
    const adapter = randomAdapter(config, { rank: 4, alpha: 8, seed: 3 });
    const dir = fresh();
    await writePeftAdapter(dir, adapter, { baseModel: "tiny" });
    const back = await readPeftAdapter(dir, config);
    expect(back.config).toMatchObject({ r: 4, lora_alpha: 8, use_rslora: false, base_model_name_or_path: "tiny", peft_type: "LORA" });
    expect(back.config.target_modules).toEqual(["down_proj", "o_proj", "q_proj", "v_proj"]);
    expect(back.weights.scale).toBe(2);
    expect([...back.weights.pairs.keys()].sort()).toEqual([...adapter.pairs.keys()].sort());
    for (const [m, p] of adapter.pairs) {
      const q = back.weights.pairs.get(m)!;
      expect(q.a).toEqual(p.a);
      expect(q.b).toEqual(p.b);
    }
    // v_proj exists only on sliding, non-shared layers (0, 2) of the tiny preset.
    expect([...adapter.pairs.keys()].filter((k) => k.endsWith("v_proj"))).toEqual([
      "layers.0.self_attn.v_proj",
      "layers.2.self_attn.v_proj",
    ]);
  });

  it("writes the multimodal layout, dropout and a layer restriction as PEFT records them, and reads them back", async () => {
    const adapter = randomAdapter(config, { rank: 2, alpha: 4, seed: 5, targets: ["q_proj"] });
    const dir = fresh();
    await writePeftAdapter(dir, adapter, { modelPrefix: "model.language_model.", dropout: 0.05, layersToTransform: [0, 2] });
    const { readFileSync } = await import("node:fs");
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({
      lora_dropout: 0.05,
      layers_to_transform: [0, 2],
      layers_pattern: "layers",
      target_modules: ["q_proj"],
      task_type: "CAUSAL_LM",
    });
    const { withSafetensors } = await import("@owntune/core");
    const names = await withSafetensors(join(dir, "adapter_model.safetensors"), async (f) => [...f.entries.keys()]);
    expect(names).toContain("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.weight");
    const back = await readPeftAdapter(dir, config);
    expect(back.weights.pairs.get("layers.0.self_attn.q_proj")!.a).toEqual(adapter.pairs.get("layers.0.self_attn.q_proj")!.a);
  });

  it("accepts the multimodal layout and PEFT's extra config keys", async () => {
    const mm = "base_model.model.model.language_model.layers.0.self_attn.q_proj";
    const dir = await handMade(
      {
        r: 2,
        lora_alpha: 4,
        target_modules: ["q_proj"],
        peft_type: "LORA",
        megatron_config: null,
        layer_replication: null,
        eva_config: null,
      },
      [
        { name: `${mm}.lora_A.weight`, shape: [2, 128] },
        { name: `${mm}.lora_B.weight`, shape: [128, 2] },
      ],
    );
    const a = await readPeftAdapter(dir, config);
    expect([...a.weights.pairs.keys()]).toEqual(["layers.0.self_attn.q_proj"]);
    expect(a.weights.pairs.get("layers.0.self_attn.q_proj")!.outFeatures).toBe(128);
  });

  it("uses PEFT's scaling: alpha/r, or alpha/√r with rsLoRA", () => {
    expect(loraScale({ r: 16, lora_alpha: 32, use_rslora: false })).toBe(2);
    expect(loraScale({ r: 16, lora_alpha: 32, use_rslora: true })).toBe(8);
  });

  it("parses PEFT tensor names in both layouts and rejects others", () => {
    expect(parsePeftTensorName(`${q0}.lora_B.weight`)).toEqual({ module: "layers.0.self_attn.q_proj", half: "B" });
    expect(parsePeftTensorName("model.layers.0.self_attn.q_proj.lora_A.weight")).toBeUndefined();
  });

  it("names the tensor whose shape does not fit the base model", async () => {
    const dir = await handMade({ r: 2, lora_alpha: 4 }, [
      { name: `${q0}.lora_A.weight`, shape: [2, 64] },
      { name: `${q0}.lora_B.weight`, shape: [128, 2] },
    ]);
    const e = await errorOf(readPeftAdapter(dir, config));
    expect(e.message).toBe(`tensor ${q0}.lora_A.weight has shape [2, 64], the base model and r=2 want [2, 128]`);
    expect(e.file).toBe(join(dir, "adapter_model.safetensors"));
  });

  it("names a module the base model does not have (a KV-shared layer's k_proj)", async () => {
    const k4 = "base_model.model.model.layers.4.self_attn.k_proj";
    const dir = await handMade({ r: 2, lora_alpha: 4 }, [
      { name: `${k4}.lora_A.weight`, shape: [2, 128] },
      { name: `${k4}.lora_B.weight`, shape: [64, 2] },
    ]);
    const e = await errorOf(readPeftAdapter(dir, config));
    expect(e.message).toBe(`tensor ${k4}.lora_A.weight: the base model has no linear layer layers.4.self_attn.k_proj`);
  });

  it("reports a pair with one half missing", async () => {
    const dir = await handMade({ r: 2, lora_alpha: 4 }, [{ name: `${q0}.lora_A.weight`, shape: [2, 128] }]);
    expect((await errorOf(readPeftAdapter(dir, config))).message).toBe("module layers.0.self_attn.q_proj has no lora_B");
  });

  it("refuses DoRA and LoRA on embeddings", async () => {
    const dora = await handMade({ r: 2, lora_alpha: 4, use_dora: true }, [{ name: `${q0}.lora_A.weight`, shape: [2, 128] }]);
    const e = await errorOf(readPeftAdapter(dora, config));
    expect(e.format()).toBe(
      `${join(dora, "adapter_config.json")}: use_dora: DoRA adapters are not supported; owntune reads plain LoRA adapters (PEFT LoraConfig defaults for these fields)`,
    );
    const emb = await handMade({ r: 2, lora_alpha: 4 }, [{ name: "base_model.model.model.embed_tokens.lora_embedding_A", shape: [2, 8] }]);
    expect((await errorOf(readPeftAdapter(emb, config))).message).toBe(
      "tensor base_model.model.model.embed_tokens.lora_embedding_A: LoRA on embeddings is not supported",
    );
  });

  it("reports a missing config with a hint", async () => {
    const e = await errorOf(readPeftAdapter(fresh(), config));
    expect(e.message).toBe("no adapter_config.json here");
  });
});

describe("mergeLora", () => {
  it("equals W + scale·B·A computed naively in float64", () => {
    const adapter = randomAdapter(config, { rank: 3, seed: 5 });
    const pair = adapter.pairs.get("layers.1.self_attn.q_proj")!;
    const W = new Float32Array(pair.outFeatures * pair.inFeatures).map((_, i) => Math.sin(i));
    const merged = mergeLora(W, pair, adapter.scale);
    let maxDiff = 0;
    for (let r = 0; r < pair.outFeatures; r++) {
      for (let c = 0; c < pair.inFeatures; c++) {
        let s = 0;
        for (let k = 0; k < pair.rank; k++) s += pair.b[r * pair.rank + k]! * pair.a[k * pair.inFeatures + c]!;
        maxDiff = Math.max(maxDiff, Math.abs(merged[r * pair.inFeatures + c]! - (W[r * pair.inFeatures + c]! + adapter.scale * s)));
      }
    }
    expect(maxDiff).toBeLessThan(1e-6);
  });
});
