// The native kernels (ggml) against the tfjs path and against themselves: float32 logits and the LoRA
// gradients a trainer step takes (tf.variableGrads over lmLoss, LoRA on every target module) equal the
// wasm path's; each compact base dtype stays within its measured rounding of the float32 forward;
// per-layer recomputation gives the same gradients bit for bit; and how kernels and storage are chosen.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BASE_DTYPES, type BaseDtype } from "@owntune/ggml";
import { layerSpecs, type Gemma4Config } from "./config.js";
import { forwardLogits } from "./gemma4.js";
import { lmLoss } from "./loss.js";
import { randomWeights } from "./init-weights.js";
import { describeKernels, parseBaseDtype, parseKernelName, selectKernels } from "./kernels.js";
import { describeStorage, gemma4FromWeights, planStorage, type Gemma4Model, type LoadOptions } from "./model.js";
import { gemma4_31b, gemma4E2b, gemma4Tiny } from "./presets.js";
import { recomputeByDefault } from "./recompute.js";
import { microConfig } from "./test-fixtures.js";
import { describeBackends, expectClose, makeLora, maxAbsDiff, testIds } from "./testing/check-model.js";
import { expectedTensors } from "./tensors.js";

/** The seven LoRA target modules (the lora package's list; the model package cannot import it). */
const LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

/** Every linear a LoRA of all seven target modules wraps (KV-shared layers have no k/v). */
function allTargets(config: Gemma4Config): string[] {
  return expectedTensors(config)
    .filter((t) => t.role === "linear" && LORA_TARGET_MODULES.some((m) => t.name.endsWith(`.${m}.weight`)))
    .map((t) => t.name.replace(/\.weight$/, ""));
}

/** Loss and LoRA gradients of one trainer-style step. */
function step(
  model: Gemma4Model,
  ids: number[],
  lora: ReturnType<typeof makeLora>,
  recompute: boolean,
): { loss: number; grads: Map<string, Float32Array> } {
  const vars = [...lora.values()].flatMap((p) => [p.a, p.b]);
  const mask = ids.map((_, t) => (t % 5 === 3 ? 0 : 1));
  const { value, grads } = tf.variableGrads(() => lmLoss(model, { ids: [ids], lossMask: [mask] }, { lora, recompute }), vars);
  const out = { loss: value.dataSync()[0]!, grads: new Map(vars.map((v) => [v.name, grads[v.name]!.dataSync() as Float32Array])) };
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

describeBackends(
  "native kernels, float32",
  () => {
    const config = microConfig();
    const ids = testIds(13, config.vocab_size, 4);
    let weights: Map<string, Float32Array>;
    let tfjs: Gemma4Model;
    let native: Gemma4Model;
    beforeAll(async () => {
      weights = randomWeights(config, 11);
      [tfjs, native] = [
        await gemma4FromWeights(config, weights, { kernels: "tfjs" }),
        await gemma4FromWeights(config, weights, { kernels: "native", baseDtype: "f32" }),
      ];
    });
    afterAll(() => {
      tfjs.dispose();
      native.dispose();
    });

    it("gives the wasm path's logits", () => {
      expect(native.storage).toMatchObject({ linears: "native", baseDtype: "f32", transposed: "stored", embedding: "native-f32" });
      const [a, b] = [forwardLogits(tfjs, { ids: [ids] }), forwardLogits(native, { ids: [ids] })];
      expectClose("logits, native vs wasm", b.dataSync(), a.dataSync(), 2e-5, [ids.length, config.vocab_size]);
      tf.dispose([a, b]);
    });

    it("gives the wasm path's loss and LoRA gradients (all seven target modules, r = 4), with and without recomputation", () => {
      const lora = makeLora(config, allTargets(config), 4);
      const want = step(tfjs, ids, lora, false);
      for (const recompute of [false, true]) {
        const got = step(native, ids, lora, recompute);
        expectClose(`loss, native (recompute ${recompute}) vs wasm`, [got.loss], [want.loss], 1e-5);
        for (const [name, g] of want.grads)
          expectClose(`${name} gradient, native (recompute ${recompute}) vs wasm`, got.grads.get(name)!, g, 5e-5);
      }
      tf.dispose([...lora.values()].flatMap((p) => [p.a, p.b]));
    });
  },
  ["wasm"],
);

describe("recomputation", () => {
  // KV sharing on: layers 2 and 3 read the K/V of layers 0 and 1 (their gradients flow back there).
  for (const kernels of ["tfjs", "native"] as const) {
    it(`gives the LoRA gradients of a plain backward pass bit for bit (${kernels} kernels, KV-shared layers)`, async () => {
      const config = microConfig();
      const model = await gemma4FromWeights(config, randomWeights(config, 12), { kernels });
      const lora = makeLora(config, allTargets(config), 2, 5);
      const ids = testIds(11, config.vocab_size, 9);
      const [plain, again] = [step(model, ids, lora, false), step(model, ids, lora, true)];
      expect(again.loss).toBe(plain.loss);
      for (const [name, g] of plain.grads) {
        expect(maxAbsDiff(again.grads.get(name)!, g).max, name).toBe(0);
        expect(
          g.some((v) => v !== 0),
          `${name} has a gradient`,
        ).toBe(true);
      }
      tf.dispose([...lora.values()].flatMap((p) => [p.a, p.b]));
      model.dispose();
    });
  }

  it("is on by default where a step's activations would take more than a sixteenth of memory", () => {
    const GiB = 2 ** 30;
    const spec = (c: Gemma4Config) => ({ config: c, layers: layerSpecs(c) });
    expect(recomputeByDefault(spec(gemma4Tiny()), 1, 512, 24 * GiB)).toBe(false);
    expect(recomputeByDefault(spec(gemma4E2b()), 1, 512, 24 * GiB)).toBe(true);
    expect(recomputeByDefault(spec(gemma4E2b()), 1, 64, 24 * GiB)).toBe(false);
  });
});

// Shapes whose rows are whole Q4_K blocks (256) almost everywhere, so each dtype is really used.
const blockConfig = () =>
  microConfig({ hidden_size: 256, intermediate_size: 512, head_dim: 128, global_head_dim: 256, hidden_size_per_layer_input: 256 });

/**
 * ‖logits − f32 logits‖ / ‖f32 logits‖ allowed per dtype, ≈ 2× measured here (bf16 3.9e-3, Q8_0 1.1e-2,
 * Q4_0 0.11, Q4_K 0.092: the weights' rounding and ggml's rounding of the activations to bf16, Q8_0 or
 * Q8_K, compounded over 4 layers).
 */
const LOGIT_BOUND: Record<Exclude<BaseDtype, "f32">, number> = { bf16: 0.008, q8_0: 0.02, q4_0: 0.2, q4_k: 0.18 };

describeBackends(
  "compact base dtypes (native)",
  () => {
    const config = blockConfig();
    const ids = testIds(14, config.vocab_size, 2);
    let weights: Map<string, Float32Array>;
    let f32: Float32Array;
    const logits = (m: Gemma4Model) => tf.tidy(() => forwardLogits(m, { ids: [ids] }).dataSync() as Float32Array);
    beforeAll(async () => {
      weights = randomWeights(config, 21);
      const m = await gemma4FromWeights(config, weights, { kernels: "native", baseDtype: "f32" });
      f32 = logits(m);
      m.dispose();
    });

    it.each(BASE_DTYPES.filter((d) => d !== "f32").map((d) => [d]))(
      "%s: logits within the type's measured rounding of the f32 base",
      async (dtype) => {
        const m = await gemma4FromWeights(config, weights, { kernels: "native", baseDtype: dtype as BaseDtype });
        try {
          expect(m.storage.baseDtype).toBe(dtype);
          const got = logits(m);
          let num = 0;
          let den = 0;
          got.forEach((v, i) => ((num += (v - f32[i]!) ** 2), (den += f32[i]! ** 2)));
          const rel = Math.sqrt(num / den);
          console.log(
            `${dtype}: logits' relative error from the f32 base ${rel.toExponential(2)}, max abs diff ${maxAbsDiff(got, f32).max.toFixed(4)}`,
          );
          expect(rel).toBeLessThan(LOGIT_BOUND[dtype as Exclude<BaseDtype, "f32">]);
          expect(rel).toBeGreaterThan(1e-5); // the weights really are held in the compact type
        } finally {
          m.dispose();
        }
      },
    );

    it("gives LoRA gradients close to the f32 base's, with Wᵀ stored or formed per product", async () => {
      const lora = makeLora(config, allTargets(config), 2, 3);
      const cos = (a: Float32Array, b: Float32Array) => {
        let ab = 0,
          aa = 0,
          bb = 0;
        for (let i = 0; i < a.length; i++) ((ab += a[i]! * b[i]!), (aa += a[i]! ** 2), (bb += b[i]! ** 2));
        return ab / Math.sqrt(aa * bb);
      };
      const load = (o: LoadOptions) => gemma4FromWeights(config, weights, { kernels: "native", ...o });
      const base = await load({ baseDtype: "f32" });
      const want = step(base, ids, lora, false);
      base.dispose();
      try {
        // Bounds ≈ measured with margin: bf16 loss 0.002 off, cosine 0.9999; Q8_0 0.003, 0.9987; Q4_0 0.19, 0.80.
        for (const [dtype, transposed, lossTol, minCos] of [
          ["bf16", "stored", 0.01, 0.999],
          ["bf16", "on-the-fly", 0.01, 0.999],
          ["q8_0", "stored", 0.02, 0.99],
          ["q4_0", "on-the-fly", 0.5, 0.6],
        ] as const) {
          const m = await load({ baseDtype: dtype, transposed });
          const got = step(m, ids, lora, false);
          m.dispose();
          const worst = Math.min(...[...want.grads].map(([name, g]) => cos(got.grads.get(name)!, g)));
          console.log(
            `${dtype}, Wᵀ ${transposed}: loss ${got.loss.toFixed(4)} vs ${want.loss.toFixed(4)}, lowest gradient cosine ${worst.toFixed(4)}`,
          );
          expect(Math.abs(got.loss - want.loss)).toBeLessThan(lossTol);
          expect(worst).toBeGreaterThan(minCos);
        }
      } finally {
        tf.dispose([...lora.values()].flatMap((p) => [p.a, p.b]));
      }
    });

    it("refuses input gradients through a base loaded for inference", async () => {
      const m = await gemma4FromWeights(config, weights, { kernels: "native", baseDtype: "q4_0", transposed: "none" });
      const lora = makeLora(config, ["layers.0.self_attn.q_proj"], 2, 99);
      try {
        expect(() => step(m, ids, lora, false)).toThrow(/loaded for inference \(no Wᵀ\): no input gradients/);
      } finally {
        tf.dispose([...lora.values()].flatMap((p) => [p.a, p.b]));
        m.dispose();
      }
    });
  },
  ["wasm"],
);

describe("choosing kernels and storage", () => {
  const GiB = 2 ** 30;
  const native = selectKernels("native").info;

  it("names what runs, and refuses unknown names with the flag in the message", () => {
    expect(describeKernels(native)).toMatch(/^native \(ggml v\S+, CPU \w+, \d+ threads?; forced\)$/);
    expect(describeKernels(selectKernels("tfjs").info)).toBe("tfjs (forced)");
    expect(() => parseKernelName("gpu")).toThrow('unknown kernels "gpu"');
    expect(() => parseBaseDtype("q3_k", "model.base_dtype")).toThrow('unknown base dtype "q3_k"');
    expect(parseBaseDtype("Q4_K")).toBe("q4_k");
  });

  it("keeps f32 and a stored Wᵀ while they fit, else bf16 and Wᵀ per product (E2B on 24 GiB)", () => {
    const source = { dtype: () => "BF16" };
    expect(planStorage(gemma4Tiny(), source, {}, 24 * GiB, native)).toMatchObject({
      baseDtype: "f32",
      transposed: "stored",
      embedding: "native-bf16",
    });
    expect(planStorage(gemma4E2b(), source, {}, 24 * GiB, native)).toMatchObject({
      baseDtype: "bf16",
      transposed: "on-the-fly",
      embedding: "native-bf16",
    });
    expect(planStorage(gemma4E2b(), source, { baseDtype: "q4_0" }, 24 * GiB, native)).toMatchObject({
      baseDtype: "q4_0",
      transposed: "stored",
    });
    expect(planStorage(gemma4_31b(), source, { baseDtype: "q4_0" }, 24 * GiB, native)).toMatchObject({
      baseDtype: "q4_0",
      transposed: "on-the-fly",
    });
  });

  it("asks the source about the per-layer table only when the config has one", () => {
    const config = microConfig({ hidden_size_per_layer_input: 0 });
    const names = new Set(expectedTensors(config).map((t) => t.name));
    const source = {
      dtype: (name: string) => {
        if (!names.has(name)) throw new RangeError(`no tensor ${name}`); // as a checkpoint answers
        return "F32";
      },
    };
    for (const kernels of [native, { name: "tfjs" as const, reason: "forced" }])
      expect(planStorage(config, source, {}, 24 * GiB, kernels).ple).toBeUndefined();
  });

  it("holds a quantized base as bf16 on the tfjs kernels, and says so", () => {
    const plan = planStorage(gemma4Tiny(), { dtype: () => "F32" }, { baseDtype: "q4_k" }, 24 * GiB, { name: "tfjs", reason: "forced" });
    expect(plan).toMatchObject({ linears: "host-bf16", baseDtype: "bf16" });
    expect(describeStorage(plan)).toBe(
      "tfjs (forced; base dtype q4_k needs the native kernels: held as bf16), base bf16 (host-bf16), embedding bf16",
    );
  });

  it("treats a tfjs placement as the tfjs kernels, and refuses it with native forced", async () => {
    const config = microConfig();
    const weights = randomWeights(config, 1);
    const m = await gemma4FromWeights(config, weights, { placement: "host" });
    expect(m.storage.kernels).toEqual({ name: "tfjs", reason: "placement host" });
    m.dispose();
    await expect(gemma4FromWeights(config, weights, { placement: "host", kernels: "native" })).rejects.toThrow(
      "placement host is a TensorFlow.js placement",
    );
  });
});
