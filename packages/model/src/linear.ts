// Every product with a base weight goes through `linear` (design.md §Backends and memory): where base
// weights live (`LinearWeights`) and which kernel multiplies them is decided here and nowhere else.
// The LoRA path sits beside it: y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ (PEFT layout, A [r, in], B [out, r]).
//
// wasm multiplies with transposeA/transposeB at 1–4 GFLOP/s against 25–55 for a plain matMul, and
// tfjs's own matMul gradient uses exactly those. So resident base weights are stored pre-transposed
// ([in, out]), host ones in the orientation that avoids re-packing them per use (see `baseWeight`), and
// `linear` and `mm` carry custom gradients built from plain matMuls and explicit transposes only.
// Under the native kernels (kernels.ts) a base weight lives in ggml memory instead (`nativeWeight`).
import * as tf from "@tensorflow/tfjs";
import { GgmlMatrix, type BaseDtype, type RowReader, type TransposedCopy } from "@owntune/ggml";
import { bf16ToF32, f32ToBf16 } from "@owntune/core";
import { customGrad } from "./autograd.js";
import { filledTensor } from "./host-tables.js";

/** One LoRA pair as tensors: `a` = lora_A [rank, in], `b` = lora_B [out, rank]; either may be a tf.Variable. */
export interface LoraTensors {
  a: tf.Tensor2D;
  b: tf.Tensor2D;
  /** PEFT's scaling: alpha/r (or alpha/√r with rsLoRA). */
  scale: number;
  /**
   * LoRA dropout (training only): the mask multiplying x before A, [N, in] with entries 0 or 1/(1−p),
   * for an input of N rows. It must give the same mask each time it is called within one step (a
   * recomputed forward calls it again), so it is derived from a seed and the step, not a stream.
   */
  dropoutMask?: (rows: number) => tf.Tensor2D;
}

/** LoRA pairs keyed by HF module name without the model prefix and `.weight`: `layers.3.self_attn.q_proj`. */
export type LoraLayers = ReadonlyMap<string, LoraTensors>;

/**
 * Where a base weight lives. `device`: a backend tensor, pre-transposed (fastest for few tokens; on wasm
 * everything resident shares one 4 GiB heap). `host`: a JS Float32Array, uploaded for each product and
 * freed right after (models larger than the backend's memory; costs one copy per use). `host-bf16`:
 * as `host`, but stored as bfloat16 (half the bytes) and widened to float32 into the backend tensor for
 * each product, forward and backward alike (so LoRA gradients are exact for the weights used: the
 * bf16 values). Exact for bf16 checkpoints (all published Gemma ones); rounds float32 weights.
 * `native`: in ggml memory as the model's base dtype, multiplied by ggml's CPU kernels (`nativeWeight`).
 */
export type WeightPlacement = "device" | "host" | "host-bf16" | "native";

/**
 * Float32 base-weight bytes above which `auto` keeps linears on the host under wasm: the wasm heap is
 * 4 GiB for everything (measured: allocation fails past ~3 GiB of tensors), a resident weight costs
 * twice its size there (tfjs-wasm keeps an XNNPACK-packed copy of each matMul's right operand), and
 * the embedding and activations need their share.
 */
export const WASM_DEVICE_WEIGHT_BUDGET = 768 * 2 ** 20;

/**
 * Share of the machine's memory that `auto` lets float32 base weights take; above it they are held as
 * bf16 (`host-bf16`). A quarter leaves room for the runtime, activations, LoRA state and the OS on a
 * 16–24 GB machine: E2B's 1.9 B linear parameters are 7.0 GiB as float32 (bf16 on machines under 28 GiB),
 * E4B's 4.0 B are 14.8 GiB (bf16 under 59 GiB); gemma4-tiny and 100 M-parameter models stay float32.
 * bf16 costs time (see BENCHMARKS.md ## model), never accuracy on bf16 checkpoints.
 */
export const F32_WEIGHT_MEMORY_SHARE = 0.25;

/**
 * The placement `auto` picks for `f32Bytes` of base linears: float32 while they fit (`device`, except
 * past WASM_DEVICE_WEIGHT_BUDGET on wasm: `host`), `host-bf16` once they exceed
 * F32_WEIGHT_MEMORY_SHARE of `totalMemory` bytes.
 */
export function autoPlacement(f32Bytes: number, backend: string, totalMemory: number): WeightPlacement {
  if (f32Bytes > F32_WEIGHT_MEMORY_SHARE * totalMemory) return "host-bf16";
  return backend === "wasm" && f32Bytes > WASM_DEVICE_WEIGHT_BUDGET ? "host" : "device";
}

/** A frozen base weight W [out, in] (HF layout) and the two products the model needs of it. */
export interface BaseWeight {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly placement: WeightPlacement;
  /** Bytes held (device or host). */
  readonly bytes: number;
  /** x·Wᵀ: [N, in] → [N, out]. */
  forward(x: tf.Tensor2D): tf.Tensor2D;
  /** dy·W: [N, out] → [N, in] (the input gradient). */
  backward(dy: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/** Transposes a row-major [rows, cols] matrix on the host (once, at load time). */
function transposeHost(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = w[base + c]!;
  }
  return out;
}

/**
 * A base weight from HF data `w` (row-major [out, in]). The only function that decides where base
 * weights live and how they reach the kernel; a quantized store would be another case here.
 *
 * Kernel orientation (XNNPACK, measured on wasm: bench/weights.bench.ts): a matMul's right-hand operand
 * is packed into XNNPACK's layout, and the packed copy is cached for as long as that tensor lives. A
 * resident weight (`device`) is therefore the right operand, Wᵀ [in, out], packed once. A weight uploaded
 * per use would be packed per use (for a 1536 × 12288 weight: 130 ms, against 20 ms for the product at
 * one token), so host weights are kept as W [out, in] and enter the forward product as the left operand:
 * x·Wᵀ = (W·xᵀ)ᵀ, transposing only activations. Their input gradient dy·W takes W as the right operand
 * (packed per use), as the forward of a pre-transposed host weight did before.
 */
export function baseWeight(
  name: string,
  w: Float32Array,
  outFeatures: number,
  inFeatures: number,
  placement: WeightPlacement = "device",
): BaseWeight {
  if (w.length !== outFeatures * inFeatures) {
    throw new RangeError(`${name}: ${w.length} values, expected [${outFeatures}, ${inFeatures}]`);
  }
  const common = { name, inFeatures, outFeatures, placement, bytes: (placement === "host-bf16" ? 2 : 4) * w.length };
  if (placement === "device") {
    let wt: tf.Tensor2D | undefined = tf.tensor2d(transposeHost(w, outFeatures, inFeatures), [inFeatures, outFeatures]); // Wᵀ [in, out]
    return {
      ...common,
      forward: (x) => tf.matMul<tf.Tensor2D>(x, wt!),
      // dy·W = (Wᵀ·dyᵀ)ᵀ with Wᵀ = the stored [in, out]: transposes only activation-sized tensors.
      backward: (dy) => tf.tidy(() => tf.transpose(tf.matMul<tf.Tensor2D>(wt!, tf.transpose(dy)))),
      dispose() {
        wt?.dispose();
        wt = undefined;
      },
    };
  }
  // Host: W [out, in] as given (float32, kept without a copy) or as bf16 bits, in a short-lived backend
  // tensor per product: uploaded (f32) or widened straight into the tensor's memory (bf16).
  const shape: [number, number] = [outFeatures, inFeatures];
  // (The closure below must not capture `w` itself under host-bf16: that would keep the float32 copy alive.)
  const f32 = placement === "host" ? w : undefined;
  const bf16 = placement === "host-bf16" ? f32ToBf16(w) : undefined;
  const upload = (): tf.Tensor2D => (bf16 ? filledTensor<tf.Rank.R2>(shape, (dst) => bf16ToF32(bf16, dst)) : tf.tensor2d(f32!, shape));
  const use = <T>(f: (t: tf.Tensor2D) => T): T => {
    const t = upload();
    try {
      return f(t);
    } finally {
      t.dispose();
    }
  };
  return {
    ...common,
    forward: (x) => use((t) => tf.tidy(() => tf.transpose(tf.matMul<tf.Tensor2D>(t, tf.transpose(x))))), // (W·xᵀ)ᵀ
    backward: (dy) => use((t) => tf.matMul<tf.Tensor2D>(dy, t)), // dy·W
    dispose() {},
  };
}

/**
 * A base weight W [out, in] (HF layout, rows from `read`) held by ggml as `dtype` (f32, bf16, Q8_0, Q4_0 or
 * Q4_K; converted by ggml's own quantizer, nothing read is kept), with Wᵀ stored in the same type or formed
 * per backward product (`transposed`). Both products run through ggml_mul_mat on the process's threadpool;
 * activations cross as float32 (ggml rounds them to the weight's dot-product type: bf16, Q8_0 or Q8_K).
 */
export async function nativeWeight(
  name: string,
  outFeatures: number,
  inFeatures: number,
  options: { dtype: BaseDtype; transposed: TransposedCopy },
  read: RowReader,
): Promise<BaseWeight> {
  const m = await GgmlMatrix.load(name, outFeatures, inFeatures, options, read);
  const run = (x: tf.Tensor2D, product: "forward" | "backward", width: number): tf.Tensor2D => {
    const n = x.shape[0];
    return m[product](x.dataSync() as Float32Array, n, (y) => filledTensor<tf.Rank.R2>([n, width], (dst) => dst.set(y)));
  };
  return {
    name,
    inFeatures,
    outFeatures,
    placement: "native",
    bytes: m.bytes,
    forward: (x) => run(x, "forward", outFeatures),
    backward: (dy) => run(dy, "backward", inFeatures),
    dispose: () => m.dispose(),
  };
}

/** The base weights of a model by HF name (`layers.0.self_attn.q_proj.weight`). */
export class LinearWeights {
  private readonly weights = new Map<string, BaseWeight>();

  add(weight: BaseWeight): void {
    if (this.weights.has(weight.name)) throw new Error(`duplicate base weight ${weight.name}`);
    this.weights.set(weight.name, weight);
  }

  get(name: string): BaseWeight {
    const w = this.weights.get(name);
    if (!w) throw new RangeError(`no base weight ${name}`);
    return w;
  }

  has(name: string): boolean {
    return this.weights.has(name);
  }

  names(): string[] {
    return [...this.weights.keys()];
  }

  /** Bytes held by placement. */
  bytes(): Record<WeightPlacement, number> {
    const out: Record<WeightPlacement, number> = { device: 0, host: 0, "host-bf16": 0, native: 0 };
    for (const w of this.weights.values()) out[w.placement] += w.bytes;
    return out;
  }

  dispose(): void {
    for (const w of this.weights.values()) w.dispose();
    this.weights.clear();
  }
}

/**
 * y = x·Wᵀ (+ scale·(x·Aᵀ)·Bᵀ when `lora` is given). x [..., in] → [..., out].
 * Gradients flow to x and to lora.a / lora.b (pass tf.Variables to train them); W is frozen.
 */
export function linear(x: tf.Tensor, weight: BaseWeight, lora?: LoraTensors): tf.Tensor {
  const lead = x.shape.slice(0, -1);
  const inF = weight.inFeatures;
  if (x.shape[x.shape.length - 1] !== inF) {
    throw new RangeError(`${weight.name}: input has ${x.shape[x.shape.length - 1]} features, weight wants ${inF}`);
  }
  if (lora) checkLora(weight, lora);
  return tf.tidy(() => {
    const x2 = tf.reshape(x, [-1, inF]) as tf.Tensor2D; // [..., in] → [N, in]
    const y2 = lora ? linearLora(weight, lora.scale, lora.dropoutMask)(x2, lora.a, lora.b) : linearBase(weight)(x2);
    return tf.reshape(y2, [...lead, weight.outFeatures]); // [N, out] → [..., out]
  });
}

function checkLora(weight: BaseWeight, lora: LoraTensors): void {
  const [r, inA] = lora.a.shape;
  const [outB, rB] = lora.b.shape;
  if (inA !== weight.inFeatures || outB !== weight.outFeatures || r !== rB) {
    throw new RangeError(
      `${weight.name}: LoRA A ${JSON.stringify(lora.a.shape)} / B ${JSON.stringify(lora.b.shape)} do not fit W [${weight.outFeatures}, ${weight.inFeatures}] (want A [r, ${weight.inFeatures}], B [${weight.outFeatures}, r])`,
    );
  }
}

function linearBase(weight: BaseWeight): (x: tf.Tensor2D) => tf.Tensor2D {
  return customGrad(([x]: [tf.Tensor2D]) => ({ value: weight.forward(x), gradFunc: (dy: tf.Tensor2D) => [weight.backward(dy)] }));
}

/**
 * y = x·Wᵀ + scale·(d(x)·Aᵀ)·Bᵀ, d = dropout (x ⊙ mask, PEFT's lora_dropout on the adapter's input only).
 * Gradients: du = scale·dy·B; dx = dy·W + (du·A) ⊙ mask; dA = duᵀ·d(x); dB = scale·dyᵀ·u.
 */
function linearLora(
  weight: BaseWeight,
  scale: number,
  dropoutMask?: (rows: number) => tf.Tensor2D,
): (x: tf.Tensor2D, a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D {
  return customGrad(([x, a, b]: [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D], save) => {
    const mask = dropoutMask?.(x.shape[0]);
    const xd = mask ? tf.mul(x, mask) : x; // d(x) [N, in]
    const u = tf.matMul(xd, tf.transpose(a)); // d(x)·Aᵀ [N, r]; Aᵀ is rank-sized
    const y = tf.add(weight.forward(x), tf.mul(tf.matMul(u, tf.transpose(b)), scale)) as tf.Tensor2D;
    save(mask ? [xd, a, b, u, mask] : [x, a, b, u]);
    return {
      value: y,
      gradFunc: (dy2: tf.Tensor2D, saved: tf.Tensor[]) => {
        const [xs, as, bs, us, ms] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D | undefined];
        const du = tf.mul(tf.matMul(dy2, bs), scale); // scale·dy·B [N, r]
        const dxLora = tf.matMul(du, as); // du·A [N, in]
        const dx = tf.add(weight.backward(dy2), ms ? tf.mul(dxLora, ms) : dxLora); // dy·W + (du·A) ⊙ mask
        const da = tf.matMul(tf.transpose(du), xs); // duᵀ·d(x) [r, in]
        const db = tf.mul(tf.transpose(tf.matMul(tf.transpose(us), dy2)), scale); // scale·dyᵀ·u = (uᵀ·dy)ᵀ [out, r]
        return [dx, da, db];
      },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Activation × activation products (attention), with the same gradient discipline.

/** Elements moved by tf.transpose in each of the two ways to form a gradient; pick the smaller. */
function plainProductGrads(a: tf.Tensor2D, b: tf.Tensor2D, dy: tf.Tensor2D): [tf.Tensor2D, tf.Tensor2D] {
  const [M, K] = a.shape;
  const N = b.shape[1];
  const dyT = M * N <= Math.min(M * K, K * N) ? tf.transpose(dy) : undefined;
  // da = dy·bᵀ [M, K]: transpose b (K·N moved), or (b·dyᵀ)ᵀ (M·N + M·K moved).
  const da =
    K * N <= M * N + M * K ? tf.matMul<tf.Tensor2D>(dy, tf.transpose(b)) : tf.transpose(tf.matMul<tf.Tensor2D>(b, dyT ?? tf.transpose(dy)));
  // db = aᵀ·dy [K, N]: transpose a (M·K moved), or (dyᵀ·a)ᵀ (M·N + K·N moved).
  const db =
    M * K <= M * N + K * N ? tf.matMul<tf.Tensor2D>(tf.transpose(a), dy) : tf.transpose(tf.matMul<tf.Tensor2D>(dyT ?? tf.transpose(dy), a));
  return [da, db];
}

const mm2d = customGrad(([a, b]: [tf.Tensor2D, tf.Tensor2D], save) => {
  save([a, b]);
  return {
    value: tf.matMul<tf.Tensor2D>(a, b),
    gradFunc: (dy: tf.Tensor2D, saved: tf.Tensor[]) => plainProductGrads(saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D, dy),
  };
});

/**
 * a·b for [M, K]·[K, N], or batched [n, M, K]·[n, K, N] as n plain 2-D products (wasm's batched
 * matMul runs at ~2 GFLOP/s, its 2-D one at 20–55). Gradients use plain products only.
 */
export function mm(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2 && b.rank === 2) return mm2d(a as tf.Tensor2D, b as tf.Tensor2D);
  if (a.rank !== 3 || b.rank !== 3 || a.shape[0] !== b.shape[0]) {
    throw new RangeError(`mm: expected [M,K]·[K,N] or [n,M,K]·[n,K,N], got ${JSON.stringify(a.shape)}·${JSON.stringify(b.shape)}`);
  }
  if (a.shape[0] === 1) return tf.tidy(() => tf.expandDims(mm2d(tf.squeeze(a, [0]) as tf.Tensor2D, tf.squeeze(b, [0]) as tf.Tensor2D), 0));
  return tf.tidy(() => {
    const as = tf.unstack(a) as tf.Tensor2D[];
    const bs = tf.unstack(b) as tf.Tensor2D[];
    return tf.stack(as.map((ai, i) => mm2d(ai, bs[i]!)));
  });
}
