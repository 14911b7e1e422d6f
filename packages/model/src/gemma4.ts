// The Gemma 4 text decoder forward pass, top to bottom as spec/gemma4.md §3 describes it: embed × √H,
// per-layer embeddings, decoder layers (sandwich norms around attention and GeGLU, PLE, layer scalar),
// final norm, tied head with soft-cap (the loss and log-probs over it: loss.ts; test-only ablations:
// ablation.ts). Every base-weight product goes through linear.ts; activation products through its `mm`; the §2
// building blocks (RMSNorm, GELU, RoPE, masked softmax) are single custom-gradient ops in ops.ts.
// Under a gradient tape each decoder layer may be recomputed in the backward pass (recompute.ts).
import * as tf from "@tensorflow/tfjs";
import { softcapOf, type Ablation } from "./ablation.js";
import { recomputed, untaped } from "./autograd.js";
import { batchShape, type TokenBatch } from "./batch.js";
import type { LayerSpec } from "./config.js";
import { StepKv, type KvCache, type KvEntry, type KvStore, type TokenMeta } from "./kv-cache.js";
import { linear, mm, type LoraLayers, type LoraTensors } from "./linear.js";
import { gelu, maskedSoftmax, rmsNorm, rope } from "./ops.js";
import type { Gemma4Model } from "./model.js";
import { recomputeByDefault } from "./recompute.js";

export interface ForwardOptions {
  /** LoRA pairs by module name (`layers.3.self_attn.q_proj`); pass tf.Variables to train them. */
  lora?: LoraLayers;
  /** Decode incrementally: keys/values of earlier calls are read from it and this call's are added. */
  cache?: KvCache;
  /**
   * Under a gradient tape (training), recompute each decoder layer in the backward pass instead of
   * keeping its activations: the step then holds every layer's input plus one layer's activations.
   * Same gradients, one more forward pass of the layers. "auto" (default): when the activations would
   * take more than RECOMPUTE_MEMORY_SHARE of memory (recompute.ts). Ignored with a cache or no tape.
   */
  recompute?: boolean | "auto";
  /** TEST-ONLY single-feature breakage (see Ablation). */
  ablate?: Ablation;
}

/** Additive mask value for disallowed keys (finite, so a fully masked row could never make NaN). */
const MASKED = -1e30;

interface Step {
  model: Gemma4Model;
  B: number;
  T: number;
  lora: LoraLayers | undefined;
  ablate: Ablation;
  kv: KvStore;
  queries: TokenMeta;
  masks: Map<string, tf.Tensor>;
  rope: Map<string, { cos: tf.Tensor; sin: tf.Tensor }>;
}

/**
 * Final hidden states (after the final norm): ids [B, T] → [B, T, H]. Differentiable with respect to
 * the LoRA tensors; with `cache`, only the new tokens are given and their states returned.
 */
export function forwardHidden(model: Gemma4Model, batch: TokenBatch, options: ForwardOptions = {}): tf.Tensor3D {
  const c = model.config;
  const { B, T } = batchShape(batch);
  const cache = options.cache;
  if (cache && cache.batch !== B) throw new RangeError(`cache holds ${cache.batch} rows, batch has ${B}`);
  if (cache && batch.segments) throw new RangeError("segments are for packed training rows; a cache decodes one document per row");
  const queries = tokenMeta(batch, B, T, cache?.length ?? 0);
  const flatIds = new Int32Array(B * T);
  batch.ids.forEach((row, b) => flatIds.set(Array.from(row), b * T));
  cache?.beginStep();
  const step: Step = {
    model,
    B,
    T,
    lora: options.lora,
    ablate: options.ablate ?? {},
    kv: cache ?? new StepKv(),
    queries,
    masks: new Map(),
    rope: new Map(),
  };
  const taping = tf.engine().state.gradientDepth > 0;
  const recompute =
    !cache &&
    taping &&
    (options.recompute === "auto" || options.recompute === undefined ? recomputeByDefault(model, B, T) : options.recompute);
  const out = tf.tidy(() => {
    // §3.1 step 1: h = E[id]·√H (exact float √H, as llama.cpp and mlx; HF's bf16-rounded scale differs slightly).
    // It and the per-layer inputs depend on no trainable tensor: computed off the tape.
    let h = untaped(
      () => tf.mul(model.embedding.lookup(flatIds), Math.fround(Math.sqrt(c.hidden_size))).reshape([B, T, c.hidden_size]) as tf.Tensor3D,
    );
    const ple = c.hidden_size_per_layer_input > 0 && !step.ablate.noPle ? perLayerInputs(step, flatIds, h) : undefined;
    const layerFn = recompute ? recomputedLayer(step) : decoderLayer;
    for (const layer of model.layers) {
      h = layerFn(step, layer, h, ple?.[layer.index]);
    }
    return rmsNorm(h, model.norms.get("norm.weight")!, c.rms_norm_eps) as tf.Tensor3D;
  });
  for (const m of step.masks.values()) m.dispose();
  for (const r of step.rope.values()) tf.dispose([r.cos, r.sin]);
  cache?.endStep(T);
  return out;
}

/** Full soft-capped logits [B, T, V]. Materializes B·T·V floats: for small vocabularies or few tokens. */
export function forwardLogits(model: Gemma4Model, batch: TokenBatch, options: ForwardOptions = {}): tf.Tensor3D {
  const h = forwardHidden(model, batch, options);
  return tf.tidy(() => {
    const [B, T, H] = h.shape;
    const logits = model.embedding.logits(h.reshape([B * T, H]), softcapOf(model, options.ablate));
    h.dispose();
    return logits.reshape([B, T, -1]) as tf.Tensor3D;
  });
}

/** Logits of the last token of each row only: [B, V] (generation). */
export function lastTokenLogits(model: Gemma4Model, batch: TokenBatch, options: ForwardOptions = {}): tf.Tensor2D {
  const h = forwardHidden(model, batch, options);
  return tf.tidy(() => {
    const [B, T, H] = h.shape;
    const last = tf.slice(h, [0, T - 1, 0], [B, 1, H]).reshape([B, H]) as tf.Tensor2D;
    h.dispose();
    return model.embedding.logits(last, softcapOf(model, options.ablate));
  });
}

// ---------------------------------------------------------------------------------------------
// §3.3: one decoder layer.

function decoderLayer(step: Step, layer: LayerSpec, h: tf.Tensor3D, ple: tf.Tensor3D | undefined): tf.Tensor3D {
  const { model } = step;
  const eps = model.config.rms_norm_eps;
  const p = `layers.${layer.index}.`;
  const norm = (x: tf.Tensor, name: string) => rmsNorm(x, model.norms.get(p + name + ".weight")!, eps);

  const attn = attention(step, layer, norm(h, "input_layernorm"));
  h = tf.add(h, norm(attn, "post_attention_layernorm"));

  const act = model.gelu ?? gelu;
  const m = norm(h, "pre_feedforward_layernorm");
  const f = proj(step, p + "mlp.down_proj", tf.mul(act(proj(step, p + "mlp.gate_proj", m)), proj(step, p + "mlp.up_proj", m)));
  h = tf.add(h, norm(f, "post_feedforward_layernorm"));

  const scalar = model.layerScalars[layer.index]!;
  if (step.ablate.layerScalarBeforePle) h = tf.mul(h, scalar);
  if (ple) {
    const g = tf.mul(act(proj(step, p + "per_layer_input_gate", h)), ple); // [B, T, P]
    h = tf.add(h, norm(proj(step, p + "per_layer_projection", g), "post_per_layer_input_norm"));
  }
  if (!step.ablate.layerScalarBeforePle) h = tf.mul(h, scalar);
  return h;
}

/** A base-weight product (with its LoRA pair, if any): HF module name without `.weight`. */
function proj(step: Step, module: string, x: tf.Tensor): tf.Tensor {
  return linear(x, step.model.linears.get(module + ".weight"), step.lora?.get(module));
}

/**
 * decoderLayer, recomputed in the backward pass. Gradients flow to the layer input, to the layer's LoRA
 * tensors and, on a KV-shared layer, to the K/V it reads from its source layer (spec §3.6); a source
 * layer hands its K/V out as extra outputs. RoPE tables and masks are made once, up front, and kept.
 */
function recomputedLayer(step: Step): typeof decoderLayer {
  const sources = new Set(step.model.layers.filter((l) => l.kvShared).map((l) => l.kvSource));
  // The step's constants, for every layer type present: built now, kept for the recomputations.
  const constantKeys: Array<["mask" | "cos" | "sin", string]> = [];
  const constants: tf.Tensor[] = [];
  for (const l of step.model.layers) {
    const r = ropeTables(step, l);
    const m = attentionMask(step, l, step.queries);
    for (const [kind, t] of [
      ["mask", m],
      ["cos", r.cos],
      ["sin", r.sin],
    ] as const) {
      const key = kind === "mask" ? maskKey(l, step.queries) : ropeKey(l);
      if (!constantKeys.some(([k, n]) => k === kind && n === key)) {
        constantKeys.push([kind, key]);
        constants.push(t);
      }
    }
  }
  return (_, layer, h, ple) => {
    const prefix = `layers.${layer.index}.`;
    const loras = step.lora ? [...step.lora].filter(([m]) => m.startsWith(prefix)) : [];
    const source = layer.kvShared ? step.kv.get(layer.kvSource) : undefined;
    const feeds = sources.has(layer.index);
    const inputs = [h, ...(source ? [source.kT, source.v] : []), ...loras.flatMap(([, p]) => [p.a, p.b])];
    const outs = recomputed(
      (xs, cs) => {
        const [hIn, ...rest] = xs;
        const kvIn = source ? { kT: rest.shift() as tf.Tensor3D, v: rest.shift() as tf.Tensor3D, keys: source.keys } : undefined;
        const lora = new Map<string, LoraTensors>(
          loras.map(([m, p], i) => [
            m,
            { a: rest[2 * i] as tf.Tensor2D, b: rest[2 * i + 1] as tf.Tensor2D, scale: p.scale, dropoutMask: p.dropoutMask },
          ]),
        );
        let own: KvEntry | undefined;
        const kv: KvStore = {
          put: (_, fresh) => (own = fresh),
          get: (index) => {
            if (kvIn && index === layer.kvSource) return kvIn;
            throw new Error(`layer ${layer.index} read layer ${index}'s K/V, which it was not given`);
          },
        };
        const local: Step = { ...step, lora, kv, masks: new Map(), rope: new Map() };
        constantKeys.forEach(([kind, key], i) => {
          if (kind === "mask") local.masks.set(key, cs[i]!);
          else local.rope.set(key, { ...local.rope.get(key)!, [kind]: cs[i]! });
        });
        const hOut = decoderLayer(local, layer, hIn as tf.Tensor3D, ple ? (cs[constants.length] as tf.Tensor3D) : undefined);
        return feeds ? [hOut, own!.kT, own!.v] : [hOut];
      },
      inputs,
      ple ? [...constants, ple] : constants,
    );
    if (feeds) step.kv.put(layer, { kT: outs[1] as tf.Tensor3D, v: outs[2] as tf.Tensor3D, keys: step.queries }, step.B);
    return outs[0] as tf.Tensor3D;
  };
}

// ---------------------------------------------------------------------------------------------
// §3.4: attention.

function attention(step: Step, layer: LayerSpec, a: tf.Tensor): tf.Tensor {
  const { B, T, model, ablate } = step;
  const eps = model.config.rms_norm_eps;
  const p = `layers.${layer.index}.self_attn.`;
  const d = layer.headDim;
  const Nq = layer.numHeads;
  const Nkv = layer.numKvHeads;
  const G = Nq / Nkv;
  const { cos, sin } = ropeTables(step, layer);

  let q = proj(step, p + "q_proj", a).reshape([B, T, Nq, d]);
  q = rope(rmsNorm(q, model.norms.get(p + "q_norm.weight")!, eps), cos, sin);

  let kv: KvEntry;
  if (layer.kvShared) {
    kv = step.kv.get(layer.kvSource); // already normed and roped by the source layer (§3.6)
  } else {
    const kRaw = proj(step, p + "k_proj", a).reshape([B, T, Nkv, d]);
    const kNormed = rmsNorm(kRaw, model.norms.get(p + "k_norm.weight")!, eps);
    const vRaw = layer.hasVProj ? proj(step, p + "v_proj", a).reshape([B, T, Nkv, d]) : ablate.vFromNormedK ? kNormed : kRaw;
    const k = rope(kNormed, cos, sin);
    const v = ablate.noVNorm ? vRaw : rmsNorm(vRaw, null, eps);
    kv = step.kv.put(
      layer,
      {
        kT: k.transpose([0, 2, 3, 1]).reshape([B * Nkv, d, T]) as tf.Tensor3D, // [B, T, Nkv, d] → [B·Nkv, d, T]
        v: v.transpose([0, 2, 1, 3]).reshape([B * Nkv, T, d]) as tf.Tensor3D, // [B, T, Nkv, d] → [B·Nkv, T, d]
        keys: step.queries,
      },
      B,
    );
  }
  const S = kv.keys.index.length;

  // GQA: query head h reads KV head floor(h/G), so heads are grouped [Nkv, G]; each (row, KV head) is one
  // 2-D product of its G·T query rows with that head's keys.
  const qg = ablate.wrongGqaMapping
    ? q.reshape([B, T, G, Nkv, d]).transpose([0, 3, 2, 1, 4]) // [B, T, G, Nkv, d] → [B, Nkv, G, T, d]
    : q.reshape([B, T, Nkv, G, d]).transpose([0, 2, 3, 1, 4]); // [B, T, Nkv, G, d] → [B, Nkv, G, T, d]
  const scores = mm(qg.reshape([B * Nkv, G * T, d]), kv.kT).reshape([B, Nkv, G, T, S]); // scale 1.0 (§3.4)
  const probs = maskedSoftmax(scores, attentionMask(step, layer, kv.keys));
  const o = mm(probs.reshape([B * Nkv, G * T, S]), kv.v).reshape([B, Nkv, G, T, d]);
  const heads = ablate.wrongGqaMapping
    ? o.transpose([0, 3, 2, 1, 4]) // [B, Nkv, G, T, d] → [B, T, G, Nkv, d]
    : o.transpose([0, 3, 1, 2, 4]); // [B, Nkv, G, T, d] → [B, T, Nkv, G, d]
  return proj(step, p + "o_proj", heads.reshape([B, T, Nq * d]));
}

/** Masks differ by layer type and by the keys attended to. */
function maskKey(layer: LayerSpec, keys: TokenMeta): string {
  return `${layer.sliding}:${keys.index.length}:${keys.index[0] ?? 0}`;
}

/** [B, 1, 1, T, S] additive mask: same document, causal by stream index, and for sliding layers q − k < W (§3.5). */
function attentionMask(step: Step, layer: LayerSpec, keys: TokenMeta): tf.Tensor {
  const window = layer.sliding ? step.model.config.sliding_window : Infinity;
  const offByOne = layer.sliding && step.ablate.slidingWindowOffByOne;
  const key = maskKey(layer, keys);
  const cached = step.masks.get(key);
  if (cached) return cached;
  const { B, T, queries } = step;
  const S = keys.index.length;
  const m = new Float32Array(B * T * S);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const qi = queries.index[t]!;
      const qp = queries.position[b * T + t]!;
      const qs = queries.segment[b * T + t]!;
      const base = (b * T + t) * S;
      for (let s = 0; s < S; s++) {
        const dist = qp - keys.position[b * S + s]!;
        const ok = keys.index[s]! <= qi && keys.segment[b * S + s] === qs && (offByOne ? dist <= window : dist < window);
        if (!ok) m[base + s] = MASKED;
      }
    }
  }
  const mask = tf.keep(tf.tensor(m, [B, 1, 1, T, S]));
  step.masks.set(key, mask);
  return mask;
}

// ---------------------------------------------------------------------------------------------
// §3.7: RoPE, NeoX pairing (j with j + d/2).

/** RoPE tables differ by layer type only. */
function ropeKey(layer: LayerSpec): string {
  return layer.sliding ? "sliding" : "full";
}

/** cos/sin [B, T, 1, d/2] for this layer type at the step's positions, computed in float64 on the host. */
function ropeTables(step: Step, layer: LayerSpec): { cos: tf.Tensor; sin: tf.Tensor } {
  const key = ropeKey(layer);
  const cached = step.rope.get(key);
  if (cached) return cached;
  const { B, T, ablate } = step;
  const d = layer.headDim;
  const half = d / 2;
  const theta = layer.ropeTheta;
  let pairs = layer.ropePairs;
  let denominator = d; // ω_j = θ^(−2j/d): proportional RoPE keeps the FULL head width here
  if (!layer.sliding && ablate.fullLayersDefaultRope) pairs = half;
  else if (!layer.sliding && ablate.ropeExponentOverRotatedDims) denominator = 2 * pairs;
  const omega = Float64Array.from({ length: half }, (_, j) => (j < pairs ? Math.pow(theta, (-2 * j) / denominator) : 0));
  const cos = new Float32Array(B * T * half);
  const sin = new Float32Array(B * T * half);
  for (let i = 0; i < B * T; i++) {
    const pos = step.queries.position[i]!;
    for (let j = 0; j < half; j++) {
      cos[i * half + j] = Math.cos(pos * omega[j]!);
      sin[i * half + j] = Math.sin(pos * omega[j]!);
    }
  }
  const tables = { cos: tf.keep(tf.tensor(cos, [B, T, 1, half])), sin: tf.keep(tf.tensor(sin, [B, T, 1, half])) };
  step.rope.set(key, tables);
  return tables;
}

// ---------------------------------------------------------------------------------------------
// §3.2: per-layer embeddings.

/** ple[l] [B, T, P] for every layer: (RMSNorm(h·W_pmᵀ/√H) + E_ple[id]·√P) / √2. */
function perLayerInputs(step: Step, flatIds: Int32Array, h: tf.Tensor3D): tf.Tensor3D[] {
  const { model, B, T } = step;
  const c = model.config;
  const L = c.num_hidden_layers;
  const P = c.hidden_size_per_layer_input;
  const tok = new Float32Array(B * T * L * P); // host gather (memory or file): the table is never a backend tensor
  model.ple!.gather(flatIds, tok, Math.sqrt(P));
  const ple = untaped(() => {
    const ctx = tf
      .mul(linear(h, model.linears.get("per_layer_model_projection.weight")), 1 / Math.sqrt(c.hidden_size))
      .reshape([B, T, L, P]); // [B, T, L·P] → [B, T, L, P]
    const ctxNormed = rmsNorm(ctx, model.norms.get("per_layer_projection_norm.weight")!, c.rms_norm_eps);
    return tf.mul(tf.add(ctxNormed, tf.tensor(tok, [B, T, L, P])), Math.SQRT1_2);
  });
  return tf.unstack(ple, 2) as tf.Tensor3D[]; // [B, T, L, P] → L × [B, T, P]
}

// ---------------------------------------------------------------------------------------------
// Batches.

function tokenMeta(batch: TokenBatch, B: number, T: number, offset: number): TokenMeta {
  const index = Int32Array.from({ length: T }, (_, t) => offset + t);
  const position = new Int32Array(B * T);
  const segment = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    let start = 0;
    for (let t = 0; t < T; t++) {
      const seg = batch.segments ? batch.segments[b]![t]! : 0;
      if (t > 0 && batch.segments && seg !== batch.segments[b]![t - 1]) start = t;
      segment[b * T + t] = seg;
      position[b * T + t] = batch.positions ? batch.positions[b]![t]! : offset + t - start;
    }
  }
  return { index, position, segment };
}
