// ggml's CPU arithmetic that verify copies into our forward pass, so that what is left between
// llama.cpp and us is summation order, not rounding we could have reproduced:
//  - a matmul's activations are converted to the weight type's `vec_dot_type` first (ggml-cpu.c
//    type_traits_cpu): Q8_0 blocks of 32 with an fp16 scale for Q4_0/Q5_0/Q8_0, Q8_K blocks of 256
//    with an f32 scale for Q4_K/Q5_K/Q6_K (also in the repacked Q4_K path), fp16 for F16 weights, bf16
//    for BF16 weights (x86: llamafile's sgemm wants both operands in the weight's type); Q4_1/Q5_1
//    take Q8_1, the Q8_0 values plus a block sum fp16(d·Σq) for their min term, which we do not copy
//    (that term comes out ~2^-12 off: Q5_1 is only a fallback for rows that are not whole K-blocks);
//  - GELU and GEGLU read an fp16 table: y = fp16(gelu(fp16(x))) for −10 < x < 10 (vec.h, GGML_GELU_FP16).
// Reference, llama.cpp v0.4.0 as node-llama-cpp 3.21.1 ships it: ggml-cpu/arch/x86/quants.c
// quantize_row_q8_0 (AVX: d = fp16(amax/127), q = round-half-even(x·127/amax)), ggml-quants.c
// quantize_row_q8_K_ref (iscale = −127/max, q = nearest_int(iscale·x), d = 1/iscale),
// arch/x86/repack.cpp ggml_quantize_mat_q8_K_4x8 (same values), ggml-cpu.c ggml_cpu_init (the table).
// Bit-exact against those functions in libggml-cpu: ggml-activations.test.ts. Host-side on purpose:
// exact float32 rounding is simple in JS and the tensors are activation-sized. Measured on the tiny
// preset (seed 1), llama.cpp vs us without → with these copies: F32 max 0.0051 → 0.0016 nats (96
// positions); median position 0.038 → 0.006 (Q8_0) and 0.051 → 0.001 (Q4_K_M) (110 positions). What
// is left on quantized files are one-step flips of the rounding after one-ulp differences in its
// input (summation order): see verify.ts.
import * as tf from "@tensorflow/tfjs";
import { LinearWeights, type BaseWeight, type Gemma4Model } from "@owntune/model";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "@owntune/core";
import { nearestInt } from "./quant/ggml-rounding.js";
import { GgmlType } from "./quant/ggml-types.js";

export type ActivationRounding = "none" | "f16" | "bf16" | "q8_0" | "q8_1" | "q8_K";

/** How ggml's CPU matmul rounds the activations multiplied with a weight of ggml `type`. */
export function activationRounding(type: number): ActivationRounding {
  switch (type) {
    case GgmlType.F32:
      return "none";
    case GgmlType.F16:
      return "f16";
    case GgmlType.BF16:
      return "bf16";
    case GgmlType.Q4_K:
    case GgmlType.Q5_K:
    case GgmlType.Q6_K:
      return "q8_K";
    case GgmlType.Q4_1:
    case GgmlType.Q5_1:
      return "q8_1";
    default:
      return "q8_0";
  }
}

const fr = Math.fround;

/** quantize_row_q8_0 (x86 AVX path) then dequantize, on one block of 32 at `o`. */
function q8_0Block(x: Float32Array, o: number): void {
  let amax = 0;
  for (let j = o; j < o + 32; j++) amax = Math.max(amax, Math.abs(x[j]!));
  const d = f16BitsToF32(f32ToF16Bits(fr(amax / 127)));
  const id = amax !== 0 ? fr(127 / amax) : 0;
  for (let j = o; j < o + 32; j++) x[j] = nearestInt(fr(x[j]! * id)) * d; // |q| ≤ 127, d fp16: exact in float32
}

/** quantize_row_q8_K_ref then dequantize, on one block of 256 at `o`. */
function q8_KBlock(x: Float32Array, o: number): void {
  let amax = 0;
  let max = 0;
  for (let j = o; j < o + 256; j++) {
    const ax = Math.abs(x[j]!);
    if (ax > amax) {
      amax = ax;
      max = x[j]!;
    }
  }
  if (amax === 0) {
    x.fill(0, o, o + 256);
    return;
  }
  const iscale = fr(-127 / max);
  const d = fr(1 / iscale);
  for (let j = o; j < o + 256; j++) x[j] = fr(d * Math.min(127, nearestInt(fr(iscale * x[j]!))));
}

/**
 * Rounds `x` (rows of `n` values) in place to what ggml multiplies for `rounding`: the activations
 * quantized to the weight's vec_dot_type and read back as float32.
 */
export function roundActivationRows(x: Float32Array, n: number, rounding: ActivationRounding): void {
  switch (rounding) {
    case "none":
      return;
    case "f16":
      for (let i = 0; i < x.length; i++) x[i] = f16BitsToF32(f32ToF16Bits(x[i]!));
      return;
    case "bf16":
      for (let i = 0; i < x.length; i++) x[i] = bf16BitsToF32(f32ToBf16Bits(x[i]!));
      return;
    case "q8_0":
    case "q8_1":
    case "q8_K": {
      const block = rounding === "q8_K" ? 256 : 32;
      if (n % block !== 0) throw new RangeError(`activation rows of ${n} values do not split into ${rounding} blocks of ${block}`);
      const round = rounding === "q8_K" ? q8_KBlock : q8_0Block;
      for (let o = 0; o < x.length; o += block) round(x, o);
      return;
    }
  }
}

/** x [N, in] rounded as ggml rounds a matmul's activations for `rounding`. */
export function roundActivations(x: tf.Tensor2D, rounding: ActivationRounding): tf.Tensor2D {
  if (rounding === "none") return x;
  const data = Float32Array.from(x.dataSync());
  roundActivationRows(data, x.shape[1], rounding);
  return tf.tensor2d(data, x.shape);
}

const GELU_COEF_A = fr(0.044715);
const SQRT_2_OVER_PI = fr(0.79788456080286535587989211986876);

/**
 * ggml_gelu_f32 in float32, operation by operation (tanhf taken as the correctly rounded tanh), with
 * 1 + a·x·x fused into one FMA as the compiler does in the FMA-capable builds (haswell and later).
 */
function geluF32(x: number): number {
  const inner = fr(fr(GELU_COEF_A * x) * x + 1); // a·x·x + 1 is exact in float64 here (|x| < 2^16)
  const t = fr(Math.tanh(fr(fr(SQRT_2_OVER_PI * x) * inner)));
  return fr(fr(0.5 * x) * fr(1 + t));
}

let geluTable: Float32Array | undefined;

/** ggml_table_gelu_f16 as float32: fp16(gelu(h)) for every fp16 bit pattern h. */
export function ggmlGeluTable(): Float32Array {
  if (!geluTable) {
    geluTable = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) geluTable[h] = f16BitsToF32(f32ToF16Bits(geluF32(f16BitsToF32(h))));
  }
  return geluTable;
}

/** ggml_vec_gelu_f32 with GGML_GELU_FP16, in place. */
export function ggmlGeluRows(x: Float32Array): void {
  const table = ggmlGeluTable();
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v <= -10) x[i] = 0;
    else if (v < 10) x[i] = table[f32ToF16Bits(v)]!;
  }
}

/** ggml's fp16-table GELU on a tensor (no gradient: for scoring only). */
export function ggmlGelu(x: tf.Tensor): tf.Tensor {
  const data = Float32Array.from(x.dataSync());
  ggmlGeluRows(data);
  return tf.tensor(data, x.shape);
}

/** Which parts of ggml's arithmetic to copy (both by default; the parts are for measuring each one). */
export interface GgmlArithmetic {
  /** Activations rounded to the weight type's vec_dot_type before each product. */
  matmulRounding?: boolean;
  /** The fp16-table GELU. */
  geluTable?: boolean;
}

/**
 * The model with ggml's CPU arithmetic where it rounds: activations rounded before every base-weight
 * product and the tied LM head per the GGUF type behind it (`typeOf` maps an HF weight name to its
 * ggml type), and the fp16-table GELU. The LoRA path stays unrounded (llama.cpp multiplies the F32
 * adapter with F32 activations). Shares the original's tensors: dispose the original only.
 */
export function withGgmlActivations(model: Gemma4Model, typeOf: (hfName: string) => number, parts: GgmlArithmetic = {}): Gemma4Model {
  const { matmulRounding = true, geluTable = true } = parts;
  const roundingOf = (name: string) => (matmulRounding ? activationRounding(typeOf(name)) : "none");
  const linears = new LinearWeights();
  for (const name of model.linears.names()) {
    const w: BaseWeight = model.linears.get(name);
    const rounding = roundingOf(name);
    linears.add(rounding === "none" ? w : { ...w, forward: (x) => tf.tidy(() => w.forward(roundActivations(x, rounding))) });
  }
  const headRounding = roundingOf("embed_tokens.weight");
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
  return { ...model, linears, embedding, gelu: geluTable ? ggmlGelu : model.gelu };
}
