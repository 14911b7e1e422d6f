// Shared test helpers for the compute half of the model (mlx-lm style): run a spec on several tfjs
// backends, compare arrays with the max abs diff and where it is, and `checkModel(config)` — the battery
// every config must pass (reference match, cache = recompute, batching, packing, chunked loss).
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { roundToBf16 } from "@owntune/core";
import { initBackend, type BackendName } from "../backend.js";
import type { Gemma4Config } from "../config.js";
import { forwardLogits } from "../gemma4.js";
import { lmLoss } from "../loss.js";
import { randomWeights } from "../init-weights.js";
import { KvCache } from "../kv-cache.js";
import { gemma4FromWeights, type Gemma4Model } from "../model.js";
import { expectedTensors } from "../tensors.js";
import type { KernelName } from "../kernels.js";
import type { WeightPlacement } from "../linear.js";
import { referenceLogits } from "./reference-gemma4.js";

/**
 * Runs `body` once per backend, each in its own describe block with that backend selected. wasm runs
 * single-threaded here: test files run side by side, and an XNNPACK pool on busy cores spins (measured
 * 20× slower when the machine was oversubscribed).
 */
export function describeBackends(
  title: string,
  body: (backend: BackendName) => void,
  backends: readonly BackendName[] = ["wasm", "cpu"],
): void {
  for (const backend of backends) {
    describe(`${title} [${backend}]`, () => {
      beforeAll(async () => {
        await initBackend({ backend, threads: 1 });
      });
      body(backend);
    });
  }
}

export interface Diff {
  max: number;
  at: number;
  a: number;
  b: number;
}

/** Largest |a[i] − b[i]| and where; NaN on either side counts as infinite unless both are NaN. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): Diff {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} vs ${b.length}`);
  let out: Diff = { max: 0, at: -1, a: 0, b: 0 };
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    const d = Number.isNaN(x) || Number.isNaN(y) ? Infinity : Math.abs(x - y);
    if (d > out.max || out.at < 0) out = { max: d, at: i, a: x, b: y };
  }
  return out;
}

/** Asserts max |a − b| ≤ tol, printing the diff and where it is (with `shape`, as an index tuple). */
export function expectClose(label: string, a: ArrayLike<number>, b: ArrayLike<number>, tol: number, shape?: readonly number[]): Diff {
  const d = maxAbsDiff(a, b);
  const where = shape ? JSON.stringify(unravel(d.at, shape)) : String(d.at);
  const line = `${label}: max abs diff ${d.max.toExponential(2)} at ${where} (${d.a} vs ${d.b}), tolerance ${tol}`;
  console.log(line);
  expect(d.max, line).toBeLessThanOrEqual(tol);
  return d;
}

function unravel(i: number, shape: readonly number[]): number[] {
  const out: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    out.unshift(i % shape[k]!);
    i = Math.floor(i / shape[k]!);
  }
  return out;
}

/** Deterministic token ids in [lo, vocab) (lo > 0 keeps <pad> out). */
export function testIds(n: number, vocab: number, salt = 0, lo = 3): number[] {
  return Array.from({ length: n }, (_, i) => lo + ((i * 7919 + salt * 104_729 + 13) % (vocab - lo)));
}

export interface CheckModelOptions {
  /** Tokens in the test sequence; must exceed the sliding window. */
  seqLen: number;
  seed?: number;
  /** Max abs logit difference allowed against the float64 reference. */
  referenceTol?: number;
  /** Vocabulary tile for the chunked-loss check (several tiles, the last one partial). */
  vocabChunk?: number;
  /** Which kernels multiply base weights (default: the loader's choice, native where ggml loads). */
  kernels?: KernelName;
  /** Where base weights live (tfjs); `host-bf16` also keeps the embedding tables as bf16 (the reference then runs on the bf16-rounded weights). */
  placement?: WeightPlacement;
  /** Bytes per chunk of in-memory host tables (small: the per-layer table spans several chunks). */
  hostChunkBytes?: number;
  /** With `host-bf16`: also show that the float32 weights' reference is measurably further away (a second reference run). */
  compareWithF32Weights?: boolean;
}

/**
 * The weights a model loaded with `placement` computes with: under `host-bf16` every linear and
 * embedding table rounded to bf16 (norms and layer scalars stay float32); else the weights themselves.
 */
export function weightsAsStored(
  config: Gemma4Config,
  weights: Map<string, Float32Array>,
  placement: WeightPlacement | undefined,
): Map<string, Float32Array> {
  if (placement !== "host-bf16") return weights;
  const roles = new Map(expectedTensors(config).map((t) => [t.name, t.role]));
  return new Map(
    [...weights].map(([name, w]) => [name, roles.get(name) === "linear" || roles.get(name) === "embedding" ? roundToBf16(w) : w]),
  );
}

/**
 * The battery every config must pass. Builds the model once (beforeAll) on the current backend; call
 * inside describeBackends.
 */
export function checkModel(name: string, makeConfig: () => Gemma4Config, options: CheckModelOptions): void {
  const T = options.seqLen;
  let config: Gemma4Config;
  let weights: Map<string, Float32Array>;
  let model: Gemma4Model;
  let ids: number[];
  let full: Float32Array; // [T, V] logits of one forward over the whole sequence
  let refLogits: Float64Array[] | undefined; // the float64 reference, computed once
  const reference = () => (refLogits ??= referenceLogits(config, weightsAsStored(config, weights, options.placement), { ids }));

  describe(name, () => {
    beforeAll(async () => {
      config = makeConfig();
      expect(T, "the test sequence must be longer than the sliding window").toBeGreaterThan(config.sliding_window);
      weights = randomWeights(config, options.seed ?? 1);
      const vocabChunk = options.vocabChunk ?? Math.max(1, Math.ceil(config.vocab_size / 3) + 1); // 3 tiles, last partial
      model = await gemma4FromWeights(config, weights, {
        vocabChunk,
        tokenBlock: 7,
        kernels: options.kernels,
        placement: options.placement,
        hostChunkBytes: options.hostChunkBytes,
      });
      if (options.kernels) expect(model.storage.kernels.name).toBe(options.kernels);
      ids = testIds(T, config.vocab_size);
      const logits = forwardLogits(model, { ids: [ids] });
      expect(logits.shape).toEqual([1, T, config.vocab_size]);
      full = logits.dataSync() as Float32Array;
      logits.dispose();
    });
    afterAll(() => model?.dispose());

    it("matches the independent float64 forward pass of the spec", () => {
      const ref = reference();
      const flat = new Float64Array(T * config.vocab_size);
      ref.forEach((row, t) => flat.set(row, t * config.vocab_size));
      expectClose(`${name} logits vs float64 reference`, full, flat, options.referenceTol ?? 1e-4, [T, config.vocab_size]);
      if (options.placement === "host-bf16") expect(model.storage).toMatchObject({ linears: "host-bf16", embedding: "bf16" });
      if (options.placement === "host-bf16" && options.compareWithF32Weights) {
        // The weights really are held as bf16: the float32 weights' reference is measurably further away.
        const f32Ref = referenceLogits(config, weights, { ids });
        const d = maxAbsDiff(full, Float64Array.from(f32Ref.flatMap((row) => Array.from(row))));
        console.log(`${name}: bf16 weights vs the float32 weights' reference: max abs logit diff ${d.max.toExponential(2)}`);
        expect(d.max).toBeGreaterThan(10 * (options.referenceTol ?? 1e-4));
      }
    });

    it("decodes with the KV cache exactly as a full recompute, past the window and through shared layers", () => {
      // Uneven chunks: a prefill, single tokens, a chunk straddling the window, then single tokens.
      const W = config.sliding_window;
      const sizes = [Math.max(1, W - 2), 1, 1, W + 1];
      while (sizes.reduce((a, b) => a + b, 0) < T) sizes.push(1);
      const cache = new KvCache(config, 1);
      const got = new Float32Array(T * config.vocab_size);
      let t0 = 0;
      for (const n0 of sizes) {
        const n = Math.min(n0, T - t0);
        if (n <= 0) break;
        const l = forwardLogits(model, { ids: [ids.slice(t0, t0 + n)] }, { cache });
        got.set(l.dataSync(), t0 * config.vocab_size);
        l.dispose();
        t0 += n;
      }
      for (const layer of cache.ownedLayers()) {
        const held = cache.keysHeld(layer);
        const sliding = config.layer_types[layer] === "sliding_attention";
        expect(held, `layer ${layer} keys held`).toBe(sliding ? Math.min(W, T) : T);
      }
      cache.dispose();
      expectClose(`${name} cached vs full logits`, got, full, 1e-4, [T, config.vocab_size]);
    });

    it("gives a batch of two the same logits as two batches of one", () => {
      const other = testIds(T, config.vocab_size, 1);
      const both = forwardLogits(model, { ids: [other, ids] });
      const alone = forwardLogits(model, { ids: [other] });
      const data = both.dataSync();
      const V = config.vocab_size;
      expectClose(`${name} batch row 0 vs alone`, data.subarray(0, T * V), alone.dataSync(), 1e-4, [T, V]);
      expectClose(`${name} batch row 1 vs alone`, data.subarray(T * V), full, 1e-4, [T, V]);
      tf.dispose([both, alone]);
    });

    it("keeps the documents of a packed row apart (attention and positions restart)", () => {
      const a = ids.slice(0, Math.floor(T / 2));
      const b = testIds(T - a.length, config.vocab_size, 2);
      const packed = forwardLogits(model, { ids: [[...a, ...b]], segments: [[...a.map(() => 0), ...b.map(() => 1)]] });
      const alone = forwardLogits(model, { ids: [b] });
      const V = config.vocab_size;
      const data = packed.dataSync();
      expectClose(`${name} packed doc 0 vs alone`, data.subarray(0, a.length * V), full.subarray(0, a.length * V), 1e-4, [a.length, V]);
      expectClose(`${name} packed doc 1 vs alone`, data.subarray(a.length * V), alone.dataSync(), 1e-4, [b.length, V]);
      tf.dispose([packed, alone]);
    });

    it("computes the tiled loss as the float64 reference, and its gradient as untiled autodiff does", () => {
      const V = config.vocab_size;
      const mask = ids.map((_, t) => (t % 3 === 1 ? 0 : 1)); // some tokens are not trained on
      let refLoss = 0;
      let n = 0;
      reference().forEach((z, t) => {
        if (t + 1 < T && mask[t + 1]) ((refLoss -= logSoftmaxAt(z, ids[t + 1]!)), n++);
      });
      const loss = lmLoss(model, { ids: [ids], lossMask: [mask] });
      expectClose(`${name} tiled loss vs float64 reference`, loss.dataSync(), [refLoss / n], 1e-4);
      loss.dispose();

      const lora = makeLora(config, ["layers.0.self_attn.q_proj", `layers.${config.num_hidden_layers - 1}.mlp.down_proj`], 3);
      const vars = [...lora.values()].flatMap((p) => [p.a, p.b]);
      const tiled = tf.variableGrads(() => lmLoss(model, { ids: [ids], lossMask: [mask] }, { lora }), vars);
      const untiled = tf.variableGrads(() => {
        const logits = forwardLogits(model, { ids: [ids] }, { lora }).reshape([T, V]);
        const targets = tf.oneHot(tf.tensor1d([...ids.slice(1), 0], "int32"), V); // [T, V]; no gather (its gradient needs UnsortedSegmentSum)
        const w = tf.tensor1d([...mask.slice(1), 0]);
        const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), targets), 1));
        return tf.div(tf.sum(tf.mul(nll, w)), tf.sum(w)) as tf.Scalar;
      }, vars);
      // tfjs's own float32 log-softmax sums V terms in float32: ~4e-4 off at V = 262,144, exact enough at small V.
      expectClose(`${name} tiled vs untiled loss`, tiled.value.dataSync(), untiled.value.dataSync(), V > 10_000 ? 1e-3 : 1e-5);
      vars.forEach((v) => expectClose(`${name} grad ${v.name}`, tiled.grads[v.name]!.dataSync(), untiled.grads[v.name]!.dataSync(), 2e-4));
      tf.dispose([tiled.value, untiled.value, ...Object.values(tiled.grads), ...Object.values(untiled.grads), ...vars]);
    });
  });
}

function logSoftmaxAt(z: Float64Array, target: number): number {
  let m = -Infinity;
  for (const v of z) m = Math.max(m, v);
  let s = 0;
  for (const v of z) s += Math.exp(v - m);
  return z[target]! - m - Math.log(s);
}

/** Trainable LoRA pairs (tf.Variables) with small random A and B (B ≠ 0, so every gradient is non-zero). */
export function makeLora(
  config: Gemma4Config,
  modules: readonly string[],
  rank: number,
  seed = 7,
): Map<string, { a: tf.Variable<tf.Rank.R2>; b: tf.Variable<tf.Rank.R2>; scale: number }> {
  const shapes = new Map(expectedTensors(config).map((t) => [t.name, t.shape]));
  const out = new Map<string, { a: tf.Variable<tf.Rank.R2>; b: tf.Variable<tf.Rank.R2>; scale: number }>();
  modules.forEach((m, i) => {
    const shape = shapes.get(m + ".weight");
    if (!shape) throw new Error(`no ${m}.weight in this config`);
    const [outF, inF] = shape as [number, number];
    const a = tf.variable(tf.randomNormal([rank, inF], 0, 1 / Math.sqrt(inF), "float32", seed + 2 * i) as tf.Tensor2D, true, `${m}.lora_A`);
    const b = tf.variable(tf.randomNormal([outF, rank], 0, 0.5, "float32", seed + 2 * i + 1) as tf.Tensor2D, true, `${m}.lora_B`);
    out.set(m, { a, b, scale: 2 });
  });
  return out;
}
