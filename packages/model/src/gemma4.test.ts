// The forward pass against an independent float64 implementation of the spec, and the shared
// checkModel battery on gemma4-tiny and on micro variants with each dense feature switched off, on the
// tfjs kernels (weights as float32 and as compact bf16) and on the native ggml kernels (float32);
// weight placements and where the per-layer table is read from.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ABLATIONS } from "./ablation.js";
import { openCheckpoint } from "./checkpoint.js";
import { forwardLogits } from "./gemma4.js";
import { lmLoss, tokenLogprobs } from "./loss.js";
import { randomWeights } from "./init-weights.js";
import { gemma4FromWeights, loadGemma4, type Gemma4Model } from "./model.js";
import { gemma4Tiny } from "./presets.js";
import { microConfig, writeMicroWeights } from "./test-fixtures.js";
import { checkModel, describeBackends, expectClose, makeLora, maxAbsDiff, testIds } from "./testing/check-model.js";
import { centralDiff, f64, sampleIndices } from "./testing/finite-diff.js";
import { referenceLogprobs } from "./testing/reference-gemma4.js";

let tinyCache: Map<string, Float32Array> | undefined;
/** gemma4-tiny's random weights (3 s to draw), shared by the tests of this file. */
const tinyWeights = () => (tinyCache ??= randomWeights(gemma4Tiny(), 1));

const variants: Array<[string, Record<string, unknown>]> = [
  ["micro (every dense feature)", {}],
  ["micro without per-layer embeddings", { hidden_size_per_layer_input: 0 }],
  ["micro without KV sharing or double-wide MLP", { num_kv_shared_layers: 0, use_double_wide_mlp: false }],
  ["micro without k=v", { attention_k_eq_v: false, num_global_key_value_heads: null }],
  ["micro without soft-capping", { final_logit_softcapping: null }],
  ["micro with full multi-head attention", { num_key_value_heads: 2, num_global_key_value_heads: 2 }],
  ["micro with default RoPE on full layers", { rope_parameters: { full_attention: { rope_type: "default", rope_theta: 1_000_000 } } }],
];

describeBackends("Gemma 4 forward", () => {
  for (const [name, overrides] of variants) checkModel(name, () => microConfig(overrides), { seqLen: 14, kernels: "tfjs" });
});

// The native kernels multiply the base weights (linears and the tied head) in ggml, float32 here.
describeBackends(
  "Gemma 4 forward, native kernels",
  () => {
    for (const [name, overrides] of variants) checkModel(name, () => microConfig(overrides), { seqLen: 14, kernels: "native" });
  },
  ["wasm"],
);

describe("gemma4-tiny", () => {
  describeBackends(
    "Gemma 4 forward",
    () => {
      checkModel("gemma4-tiny", gemma4Tiny, { seqLen: 40, vocabChunk: 100_000, kernels: "tfjs" });
      checkModel("gemma4-tiny, native kernels", gemma4Tiny, { seqLen: 40, vocabChunk: 100_000, kernels: "native" });
    },
    ["wasm"],
  );
});

// Compact storage: linears and both embedding tables held as bf16 (the per-layer table in several
// chunks), widened per use; the reference runs on the same bf16-rounded weights.
describeBackends("Gemma 4 forward, weights held as bf16", () => {
  checkModel("micro (every dense feature), host-bf16", () => microConfig(), {
    seqLen: 14,
    placement: "host-bf16",
    hostChunkBytes: 256,
    compareWithF32Weights: true,
  });
  checkModel(
    "micro without KV sharing or double-wide MLP, host-bf16",
    () => microConfig({ num_kv_shared_layers: 0, use_double_wide_mlp: false }),
    { seqLen: 14, placement: "host-bf16", hostChunkBytes: 256, compareWithF32Weights: true },
  );
});

describe("gemma4-tiny, weights held as bf16", () => {
  describeBackends(
    "Gemma 4 forward",
    () => {
      checkModel("gemma4-tiny, host-bf16", gemma4Tiny, {
        seqLen: 40,
        vocabChunk: 100_000,
        placement: "host-bf16",
        hostChunkBytes: 4 << 20,
      });
    },
    ["wasm"],
  );
});

const gradientRuns = [
  ["tfjs", false],
  ["native", false],
  ["native", true],
] as const;
for (const [kernels, recompute] of gradientRuns)
  describeBackends(`LoRA gradients through the whole model (${kernels} kernels${recompute ? ", layers recomputed" : ""})`, () => {
    const config = microConfig();
    const V = config.vocab_size;
    // Every target module type, on a plain layer (0), a k=v full layer (1: no v_proj) and KV-shared layers (2, 3).
    const modules = [
      "layers.0.self_attn.q_proj",
      "layers.0.self_attn.k_proj",
      "layers.0.self_attn.v_proj",
      "layers.0.self_attn.o_proj",
      "layers.1.self_attn.k_proj",
      "layers.2.mlp.gate_proj",
      "layers.2.mlp.up_proj",
      "layers.2.mlp.down_proj",
      "layers.3.self_attn.q_proj",
    ];
    let weights: Map<string, Float32Array>;
    let model: Gemma4Model;
    beforeAll(async () => {
      weights = randomWeights(config, 3);
      model = await gemma4FromWeights(config, weights, { vocabChunk: 20, kernels });
    });
    afterAll(() => model.dispose());

    it("equal central finite differences of the float64 reference loss (packed row, loss mask)", () => {
      const ids = [...testIds(7, V, 1), ...testIds(6, V, 2)];
      const segments = ids.map((_, t) => (t < 7 ? 0 : 1));
      const mask = ids.map((_, t) => (t % 4 === 2 ? 0 : 1));
      const lora = makeLora(config, modules, 2);
      const vars = [...lora.values()].flatMap((p) => [p.a, p.b]);
      const { value, grads } = tf.variableGrads(
        () => lmLoss(model, { ids: [ids], segments: [segments], lossMask: [mask] }, { lora, recompute }),
        vars,
      );
      const params = new Map([...lora].map(([m, p]) => [m, { a: f64(p.a.dataSync()), b: f64(p.b.dataSync()), rank: 2, scale: p.scale }]));
      const refLoss = () => {
        const lp = referenceLogprobs(config, weights, { ids, segments, lora: params });
        let s = 0;
        let n = 0;
        lp.forEach((v, t) => {
          if (!Number.isNaN(v) && mask[t + 1]) ((s -= v), n++);
        });
        return s / n;
      };
      expectClose("loss vs float64 reference", value.dataSync(), [refLoss()], 1e-5);
      for (const [m, p] of params) {
        for (const part of ["a", "b"] as const) {
          const v = lora.get(m)![part];
          const idx = sampleIndices(p[part].length, 4, m.length);
          const fd = centralDiff(() => refLoss(), p[part], idx);
          const got = grads[v.name]!.dataSync();
          expectClose(
            `d loss / d ${v.name} vs finite differences`,
            idx.map((i) => got[i]!),
            fd,
            2e-5,
          );
        }
      }
      tf.dispose([value, ...Object.values(grads), ...vars]);
    });
  });

describe("ablations (test-only single-feature breakage)", () => {
  describeBackends(
    "each flag",
    () => {
      let model: Gemma4Model;
      const config = gemma4Tiny();
      const ids = testIds(24, config.vocab_size, 5);
      let base: Float32Array;
      beforeAll(async () => {
        model = await gemma4FromWeights(config, tinyWeights());
        base = tokenLogprobs(model, { ids: [ids] })[0]!;
      });
      afterAll(() => model.dispose());
      it.each(ABLATIONS.map((a) => [a]))("%s changes the log-probabilities", (flag) => {
        const lp = tokenLogprobs(model, { ids: [ids] }, { ablate: { [flag]: true } })[0]!;
        const d = maxAbsDiff(lp, base);
        console.log(`${flag}: max abs log-prob change ${d.max.toExponential(2)} at token ${d.at}`);
        expect(d.max).toBeGreaterThan(1e-3);
      });
    },
    ["wasm"],
  );
});

describeBackends(
  "weight placement",
  () => {
    it("gives the same logits and LoRA gradients with base weights on the host as on the device", async () => {
      const config = microConfig();
      const weights = randomWeights(config, 4);
      const [device, host] = await Promise.all([
        gemma4FromWeights(config, weights, { placement: "device" }),
        gemma4FromWeights(config, weights, { placement: "host" }),
      ]);
      expect(host.linears.bytes().device).toBe(0);
      const ids = testIds(9, config.vocab_size, 6);
      const lora = makeLora(config, ["layers.0.self_attn.q_proj", "layers.2.mlp.down_proj"], 2);
      const vars = [...lora.values()].flatMap((p) => [p.a, p.b]);
      const run = (m: Gemma4Model) => tf.variableGrads(() => lmLoss(m, { ids: [ids], lossMask: [ids.map(() => 1)] }, { lora }), vars);
      const [a, b] = [run(device), run(host)];
      expectClose("loss, host vs device weights", a.value.dataSync(), b.value.dataSync(), 0);
      for (const v of vars)
        expectClose(`grad ${v.name}, host vs device weights`, a.grads[v.name]!.dataSync(), b.grads[v.name]!.dataSync(), 0);
      tf.dispose([a.value, b.value, ...Object.values(a.grads), ...Object.values(b.grads), ...vars]);
      device.dispose();
      host.dispose();
    });

    it("gathers per-layer embeddings from the checkpoint file (after it is closed) with the same logits as from memory", async () => {
      const config = microConfig();
      const dir = await mkdtemp(join(tmpdir(), "owntune-ple-file-"));
      try {
        await writeMicroWeights(join(dir, "model.safetensors"), config, { dtype: "BF16", seed: 5 });
        const cp = await openCheckpoint(dir, { config });
        const [fromFile, inMemory] = [await loadGemma4(config, cp), await loadGemma4(config, cp, { pleStorage: "memory" })];
        await cp.close();
        expect(fromFile.storage.ple).toEqual({ where: "file" });
        expect(fromFile.ple!.bytes).toBe(0);
        expect(inMemory.storage.ple).toEqual({ where: "memory", dtype: "bf16" }); // bf16 in the file: kept as bf16, losslessly
        const ids = testIds(11, config.vocab_size, 3);
        const [a, b] = [forwardLogits(fromFile, { ids: [ids] }), forwardLogits(inMemory, { ids: [ids] })];
        expectClose("logits, per-layer table from the file vs memory", a.dataSync(), b.dataSync(), 0);
        tf.dispose([a, b]);
        fromFile.dispose();
        inMemory.dispose();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  },
  ["wasm"],
);
