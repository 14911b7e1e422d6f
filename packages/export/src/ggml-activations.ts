// What ggml's CPU matmul does to activations before multiplying them with a quantized weight
// (ggml-cpu type_traits `vec_dot_type`): 8-bit activations, Q8_0 blocks of 32 with an fp16 scale for
// Q4_0/Q5_0/Q5_1/Q8_0, Q8_K blocks of 256 with an f32 scale for the K-quants. Verify applies the same
// rounding in our forward pass (only to the base-weight product: llama.cpp multiplies the F32 LoRA
// path unrounded) and measures how much that rounding moves our own log-probs, which sets the
// tolerance for quantized files. Reference: ggml-cpu quants.c quantize_row_q8_0 / quantize_row_q8_K
// (round to nearest even, scale = amax/127).
//
// Measured on the tiny preset with one Q8_0 tensor at a time (the rest F32), the emulation takes
// llama.cpp vs us from 0.04–0.09 nats to 0.002–0.02 (attn_q 0.066 → 0.002, attn_output 0.045 →
// 0.006, ffn_gate 0.092 → 0.010, ffn_down 0.093 → 0.022). With every tensor quantized the residue
// adds up (≈ 0.2–0.3 nats): 8-bit rounding is discontinuous, so sub-ulp differences in its inputs
// (ggml's fp16 GELU table, summation order) flip levels, and a random model amplifies them. F16/BF16
// weights (whose activations ggml rounds to F16/BF16) are left unrounded: their effect is below the
// float tolerance.
import * as tf from "@tensorflow/tfjs";
import { LinearWeights, type BaseWeight, type Gemma4Model } from "@owntune/model";
import { GgmlType } from "./quant/ggml-types.js";

type ActivationRounding = "none" | "q8_0" | "q8_k";

/** The activation rounding ggml applies for a weight of ggml `type`. */
export function activationRounding(type: number): ActivationRounding {
  switch (type) {
    case GgmlType.F32:
    case GgmlType.F16:
    case GgmlType.BF16:
      return "none";
    case GgmlType.Q4_K:
    case GgmlType.Q5_K:
    case GgmlType.Q6_K:
      return "q8_k";
    default:
      return "q8_0";
  }
}

/** Rounds positive float32 values to fp16's grid (normal range; ties to even via tf.round). */
function roundToFp16Magnitude(a: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const safe = tf.maximum(a, 2 ** -14);
    const exp = tf.floor(tf.div(tf.log(safe), Math.LN2));
    const ulp = tf.pow(2, tf.sub(exp, 10));
    return tf.mul(tf.round(tf.div(a, ulp)), ulp);
  });
}

/** Block-wise 8-bit quantize-dequantize of x [N, in] (blocks along `in`). */
function q8(x: tf.Tensor2D, block: number, fp16Scale: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, k] = x.shape;
    const blocks = x.reshape([n, k / block, block]); // [N, in] → [N, in/block, block]
    const amax = tf.max(tf.abs(blocks), -1, true);
    const d = tf.div(amax, 127);
    const id = tf.where(tf.greater(amax, 0), tf.div(127, tf.maximum(amax, 1e-30)), tf.zerosLike(amax));
    const q = tf.round(tf.mul(blocks, id));
    const scale = fp16Scale ? roundToFp16Magnitude(d) : d;
    return tf.mul(q, scale).reshape([n, k]) as tf.Tensor2D;
  });
}

/** x rounded as ggml rounds a matmul's activations for `rounding`. */
export function roundActivations(x: tf.Tensor2D, rounding: ActivationRounding): tf.Tensor2D {
  switch (rounding) {
    case "none":
      return x;
    case "q8_0":
      return q8(x, 32, true);
    case "q8_k":
      return q8(x, 256, false);
  }
}

/**
 * The model with ggml's activation rounding in front of every base-weight product and the tied LM
 * head. `typeOf` gives the GGUF ggml type behind an HF weight name. The returned model shares the
 * original's tensors: dispose the original only.
 */
export function withGgmlActivations(model: Gemma4Model, typeOf: (hfName: string) => number): Gemma4Model {
  const linears = new LinearWeights();
  for (const name of model.linears.names()) {
    const w: BaseWeight = model.linears.get(name);
    const rounding = activationRounding(typeOf(name));
    linears.add(rounding === "none" ? w : { ...w, name: w.name, forward: (x) => tf.tidy(() => w.forward(roundActivations(x, rounding))) });
  }
  const headRounding = activationRounding(typeOf("embed_tokens.weight"));
  const embedding = Object.create(model.embedding) as Gemma4Model["embedding"];
  const base = model.embedding;
  embedding.targetLogprobs = (h, targets, softcap) => {
    const r = roundActivations(h, headRounding);
    try {
      return base.targetLogprobs(r, targets, softcap);
    } finally {
      if (r !== h) r.dispose();
    }
  };
  embedding.logits = (h, softcap) => tf.tidy(() => base.logits(roundActivations(h, headRounding), softcap));
  return { ...model, linears, embedding };
}
