// An independent float64 Gemma 4 forward pass in plain JavaScript, written from spec/gemma4.md §1.1,
// §2 and §3 only, for tests. It shares no code with gemma4.ts (it derives the per-layer quantities
// itself) and favours obviousness over speed: one token at a time, plain loops.
import type { Gemma4Config } from "../config.js";

type Vec = Float64Array;

export interface ReferenceLora {
  /** lora_A [rank, in], lora_B [out, rank] row-major; y += scale·B·(A·x). */
  a: ArrayLike<number>;
  b: ArrayLike<number>;
  rank: number;
  scale: number;
}

export interface ReferenceInput {
  ids: number[];
  /** RoPE positions; default 0..T−1 restarting at each new segment. */
  positions?: number[];
  /** Documents of a packed row; default all 0. */
  segments?: number[];
  /** LoRA pairs by module name (`layers.0.self_attn.q_proj`). */
  lora?: ReadonlyMap<string, ReferenceLora>;
}

/** Logits (soft-capped) for every position: T rows of V float64 values. */
export function referenceLogits(config: Gemma4Config, weights: ReadonlyMap<string, Float32Array>, input: ReferenceInput): Vec[] {
  const c = config;
  const H = c.hidden_size;
  const L = c.num_hidden_layers;
  const P = c.hidden_size_per_layer_input;
  const T = input.ids.length;
  const segments = input.segments ?? new Array<number>(T).fill(0);
  const positions = input.positions ?? defaultPositions(segments);
  const w = (name: string): Float32Array => {
    const t = weights.get(name);
    if (!t) throw new Error(`reference: missing ${name}`);
    return t;
  };
  // A linear y = W·x (+ LoRA), W [out, in] row-major.
  const lin = (module: string, x: Vec): Vec => {
    const W = w(module + ".weight");
    const inF = x.length;
    const outF = W.length / inF;
    const y = new Float64Array(outF);
    for (let o = 0; o < outF; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += W[o * inF + i]! * x[i]!;
      y[o] = s;
    }
    const lo = input.lora?.get(module);
    if (lo) {
      const ax = new Float64Array(lo.rank);
      for (let r = 0; r < lo.rank; r++) for (let i = 0; i < inF; i++) ax[r] = ax[r]! + lo.a[r * inF + i]! * x[i]!;
      for (let o = 0; o < outF; o++) {
        let s = 0;
        for (let r = 0; r < lo.rank; r++) s += lo.b[o * lo.rank + r]! * ax[r]!;
        y[o] = y[o]! + lo.scale * s;
      }
    }
    return y;
  };
  const rms = (x: Vec, weight: Float32Array | null): Vec => {
    let ms = 0;
    for (const v of x) ms += v * v;
    const inv = 1 / Math.sqrt(ms / x.length + c.rms_norm_eps);
    return x.map((v, i) => v * inv * (weight ? weight[i]! : 1));
  };
  const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
  const add = (a: Vec, b: Vec) => a.map((v, i) => v + b[i]!);

  // Per-layer quantities (spec §1.1).
  const f = L - c.num_kv_shared_layers;
  const layer = Array.from({ length: L }, (_, i) => {
    const sliding = c.layer_types[i] === "sliding_attention";
    const d = sliding ? c.head_dim : c.global_head_dim;
    const kEqV = !sliding && c.attention_k_eq_v;
    const nkv = kEqV && c.num_global_key_value_heads !== null ? c.num_global_key_value_heads : c.num_key_value_heads;
    const shared = c.num_kv_shared_layers > 0 && i >= f;
    let source = i;
    if (shared)
      for (let j = f - 1; j >= 0; j--)
        if (c.layer_types[j] === c.layer_types[i]) {
          source = j;
          break;
        }
    const rope = sliding ? c.rope_parameters.sliding_attention : c.rope_parameters.full_attention;
    const partial =
      !sliding && c.rope_parameters.full_attention.rope_type === "proportional"
        ? c.rope_parameters.full_attention.partial_rotary_factor
        : 1;
    return { sliding, d, nkv, kEqV, shared, source, theta: rope.rope_theta, pairs: Math.floor((d * partial) / 2) };
  });

  // §3.1 step 1: h = E[id]·√H.
  const E = w("embed_tokens.weight");
  let hs: Vec[] = input.ids.map((id) => Float64Array.from(E.subarray(id * H, (id + 1) * H), (v) => v * Math.sqrt(H)));

  // §3.2 per-layer inputs ple[t][l] (P values).
  let ple: Vec[][] | undefined;
  if (P > 0) {
    const Eple = w("embed_tokens_per_layer.weight");
    const nPm = w("per_layer_projection_norm.weight");
    ple = hs.map((h, t) => {
      const ctx = lin("per_layer_model_projection", h).map((v) => v / Math.sqrt(H));
      return Array.from({ length: L }, (_, l) => {
        const ctxL = rms(ctx.subarray(l * P, (l + 1) * P), nPm);
        const row = input.ids[t]! * L * P + l * P;
        return ctxL.map((v, p) => (v + Eple[row + p]! * Math.sqrt(P)) / Math.SQRT2);
      });
    });
  }

  // K/V per layer (post-norm, post-RoPE) for sharing: kv[i][t] = { k: heads × d, v: heads × d }.
  const kvOf: Array<{ k: Vec[][]; v: Vec[][] } | undefined> = new Array(L);
  for (let i = 0; i < L; i++) {
    const ly = layer[i]!;
    const p = `layers.${i}.`;
    const { d, nkv } = ly;
    const nq = c.num_attention_heads;
    const ropeRot = (x: Vec, pos: number): Vec => {
      // NeoX pairing j ↔ j + d/2; ω_j = θ^(−2j/d) for j < pairs, 0 beyond (spec §3.7).
      const out = Float64Array.from(x);
      for (let j = 0; j < d / 2; j++) {
        const ang = j < ly.pairs ? pos * Math.pow(ly.theta, (-2 * j) / d) : 0;
        const a = x[j]!;
        const b = x[j + d / 2]!;
        out[j] = a * Math.cos(ang) - b * Math.sin(ang);
        out[j + d / 2] = b * Math.cos(ang) + a * Math.sin(ang);
      }
      return out;
    };
    const split = (x: Vec, n: number): Vec[] => Array.from({ length: n }, (_, h) => x.slice(h * d, (h + 1) * d));

    const normed = hs.map((h) => rms(h, w(p + "input_layernorm.weight")));
    const qs = normed.map((a, t) =>
      split(lin(p + "self_attn.q_proj", a), nq).map((q) => ropeRot(rms(q, w(p + "self_attn.q_norm.weight")), positions[t]!)),
    );
    if (!ly.shared) {
      const ks: Vec[][] = [];
      const vs: Vec[][] = [];
      normed.forEach((a, t) => {
        const kRaw = split(lin(p + "self_attn.k_proj", a), nkv);
        const vRaw = ly.kEqV ? kRaw : split(lin(p + "self_attn.v_proj", a), nkv);
        ks.push(kRaw.map((k) => ropeRot(rms(k, w(p + "self_attn.k_norm.weight")), positions[t]!)));
        vs.push(vRaw.map((v) => rms(v, null)));
      });
      kvOf[i] = { k: ks, v: vs };
    }
    const { k: K, v: V } = kvOf[ly.source]!;
    const attnOut = qs.map((qh, t) => {
      const out = new Float64Array(nq * d);
      for (let h = 0; h < nq; h++) {
        const g = Math.floor(h / (nq / nkv));
        const scores: number[] = [];
        const keys: number[] = [];
        for (let s = 0; s <= t; s++) {
          if (segments[s] !== segments[t]) continue;
          if (ly.sliding && positions[t]! - positions[s]! >= c.sliding_window) continue;
          let dot = 0;
          for (let j = 0; j < d; j++) dot += qh[h]![j]! * K[s]![g]![j]!;
          scores.push(dot); // scale 1.0
          keys.push(s);
        }
        const m = Math.max(...scores);
        const e = scores.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        keys.forEach((s, n) => {
          for (let j = 0; j < d; j++) out[h * d + j] = out[h * d + j]! + (e[n]! / z) * V[s]![g]![j]!;
        });
      }
      return lin(p + "self_attn.o_proj", out);
    });
    hs = hs.map((h, t) => add(h, rms(attnOut[t]!, w(p + "post_attention_layernorm.weight"))));
    hs = hs.map((h) => {
      const m = rms(h, w(p + "pre_feedforward_layernorm.weight"));
      const gate = lin(p + "mlp.gate_proj", m);
      const up = lin(p + "mlp.up_proj", m);
      const ff = lin(
        p + "mlp.down_proj",
        gate.map((g, j) => gelu(g) * up[j]!),
      );
      return add(h, rms(ff, w(p + "post_feedforward_layernorm.weight")));
    });
    if (ple) {
      hs = hs.map((h, t) => {
        const g = lin(p + "per_layer_input_gate", h).map((v, j) => gelu(v) * ple![t]![i]![j]!);
        return add(h, rms(lin(p + "per_layer_projection", g), w(p + "post_per_layer_input_norm.weight")));
      });
    }
    const scalar = w(p + "layer_scalar")[0]!;
    hs = hs.map((h) => h.map((v) => v * scalar));
  }

  // §3.1 steps 4–6: final norm, tied head, soft-cap.
  const cap = c.final_logit_softcapping;
  return hs.map((h) => {
    const x = rms(h, w("norm.weight"));
    const logits = new Float64Array(c.vocab_size);
    for (let v = 0; v < c.vocab_size; v++) {
      let s = 0;
      for (let j = 0; j < H; j++) s += E[v * H + j]! * x[j]!;
      logits[v] = cap === null ? s : cap * Math.tanh(s / cap);
    }
    return logits;
  });
}

/** log p(ids[t+1] | ids[≤t]) for t = 0..T−2 (NaN where t+1 starts a new segment). */
export function referenceLogprobs(config: Gemma4Config, weights: ReadonlyMap<string, Float32Array>, input: ReferenceInput): Float64Array {
  const logits = referenceLogits(config, weights, input);
  const T = input.ids.length;
  const out = new Float64Array(T - 1);
  for (let t = 0; t + 1 < T; t++) {
    if (input.segments && input.segments[t] !== input.segments[t + 1]) {
      out[t] = Number.NaN;
      continue;
    }
    const z = logits[t]!;
    let m = -Infinity;
    for (const v of z) m = Math.max(m, v);
    let s = 0;
    for (const v of z) s += Math.exp(v - m);
    out[t] = z[input.ids[t + 1]!]! - m - Math.log(s);
  }
  return out;
}

function defaultPositions(segments: number[]): number[] {
  let start = 0;
  return segments.map((s, t) => {
    if (t > 0 && s !== segments[t - 1]) start = t;
    return t - start;
  });
}
