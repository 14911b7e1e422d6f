// The tied embedding E [V, H] in ggml memory (f32 or bf16) under the native kernels: lookups by
// ggml_get_rows, and the LM head as ggml graphs per (token block, vocabulary tile) that form the logits,
// the soft-cap, the tile's softmax and, for training, the tile's gradient term in one go, so [tokens,
// vocab] logits never cross into JavaScript. Same sweep as lm-head.ts (spec/gemma4.md §3.1 steps 5–6):
// per tile lse_c = z_max − log(softmax_c at the max), combined in float64 on the host.
import * as tf from "@tensorflow/tfjs";
import { floatView, GgmlMatrix, GgmlType, int32View, type GgmlBase, type GgmlRuntime, type Ptr, type RowReader } from "@owntune/ggml";
import { filledTensor } from "./host-tables.js";
import { customGrad } from "./autograd.js";
import {
  DEFAULT_TOKEN_BLOCK,
  DEFAULT_VOCAB_CHUNK,
  logAddExp,
  nllSumWith,
  targetLogprobsWith,
  type HeadPass,
  type TokenEmbedding,
} from "./lm-head.js";

/** Float32 values one full-vocabulary logits graph may produce (`logits`): 64 rows of a 262,144-token vocabulary. */
const LOGITS_GRAPH_VALUES = 1 << 24;

export interface NativeEmbeddingOptions {
  dtype: "f32" | "bf16";
  vocabChunk?: number;
  tokenBlock?: number;
}

export class NativeEmbedding implements TokenEmbedding, HeadPass {
  readonly vocab: number;
  readonly hidden: number;
  readonly chunk: number;
  readonly tokenBlock: number;
  readonly storage: "native-f32" | "native-bf16";
  private e: GgmlMatrix | undefined;

  private constructor(e: GgmlMatrix, vocab: number, hidden: number, options: NativeEmbeddingOptions) {
    this.e = e;
    this.vocab = vocab;
    this.hidden = hidden;
    this.chunk = Math.min(options.vocabChunk ?? DEFAULT_VOCAB_CHUNK, vocab);
    this.tokenBlock = options.tokenBlock ?? DEFAULT_TOKEN_BLOCK;
    this.storage = options.dtype === "f32" ? "native-f32" : "native-bf16";
  }

  /** E from float32 rows `read(start, count)`, streamed into ggml memory block by block. */
  static async load(read: RowReader, vocab: number, hidden: number, options: NativeEmbeddingOptions): Promise<NativeEmbedding> {
    // No stored Eᵀ: the head's gradient transposes each vocabulary tile in its graph (once per token block).
    const e = await GgmlMatrix.load("embed_tokens.weight", vocab, hidden, { dtype: options.dtype, transposed: "on-the-fly" }, read);
    return new NativeEmbedding(e, vocab, hidden, options);
  }

  get bytes(): number {
    return this.e?.bytes ?? 0;
  }

  private get matrix(): GgmlMatrix {
    if (!this.e) throw new Error("the native embedding is disposed");
    return this.e;
  }

  private get rt(): GgmlRuntime {
    return this.matrix.runtime;
  }

  /** Rows [v0, v0+n) of E as a ggml view. */
  private rowsView(ctx: Ptr, v0: number, n: number): Ptr {
    const g = this.rt.libs.base;
    const rowBytes = g.rowSize(this.storage === "native-f32" ? GgmlType.F32 : GgmlType.BF16, this.hidden);
    return g.view2d(ctx, this.matrix.tensor, this.hidden, n, rowBytes, v0 * rowBytes);
  }

  lookup(ids: ArrayLike<number>): tf.Tensor2D {
    const list = new Int32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab)
        throw new RangeError(`token id ${id} outside the vocabulary [0, ${this.vocab})`);
      list[i] = id;
    }
    const H = this.hidden;
    return this.rt.compute(
      (b) => [b.g.getRows(b.ctx, this.matrix.tensor, b.inputIds(list))],
      ([rows]) => filledTensor<tf.Rank.R2>([list.length, H], (dst) => dst.set(floatView(this.rt.libs.base.getData(rows), list.length * H))),
    );
  }

  /** Full soft-capped logits [N, V], differentiable with respect to h (dh = (dy·cap′)·E, through ggml). */
  logits(h: tf.Tensor2D, softcap: number | null): tf.Tensor2D {
    return customGrad(([hIn]: [tf.Tensor2D], save) => {
      const z = this.cappedLogits(hIn.dataSync() as Float32Array, hIn.shape[0], softcap);
      save([z]);
      return {
        value: z,
        gradFunc: (dy: tf.Tensor2D, [zs]: tf.Tensor[]) => {
          const dz = softcap === null ? dy : tf.mul(dy, tf.sub(1, tf.square(tf.div(zs!, softcap)))); // cap′ = 1 − tanh²
          const n = dy.shape[0];
          const dzv = dz.dataSync() as Float32Array;
          return [this.matrix.backward(dzv, n, (dh) => filledTensor<tf.Rank.R2>([n, this.hidden], (dst) => dst.set(dh)))];
        },
      };
    })(h);
  }

  /** cap(h·Eᵀ) [N, V] as a tensor, a block of rows per graph. */
  private cappedLogits(hv: Float32Array, N: number, softcap: number | null): tf.Tensor2D {
    const H = this.hidden;
    const V = this.vocab;
    const block = Math.max(1, Math.floor(LOGITS_GRAPH_VALUES / V));
    return filledTensor<tf.Rank.R2>([N, V], (dst) => {
      for (let r0 = 0; r0 < N; r0 += block) {
        const n = Math.min(block, N - r0);
        this.rt.compute(
          (b) => [capped(b.g, b.ctx, b.g.mulMat(b.ctx, this.matrix.tensor, b.input(hv.subarray(r0 * H, (r0 + n) * H), H, n)), softcap).zc],
          ([z]) => dst.set(floatView(this.rt.libs.base.getData(z), n * V), r0 * V),
        );
      }
    });
  }

  targetLogprobs(h: tf.Tensor2D, targets: ArrayLike<number>, softcap: number | null): Float32Array {
    return targetLogprobsWith(this, h, targets, softcap);
  }

  nllSum(h: tf.Tensor2D, targets: ArrayLike<number>, weights: ArrayLike<number>, softcap: number | null): tf.Scalar {
    return nllSumWith(this, h, targets, weights, softcap);
  }

  /**
   * The sweep of HeadPass: per token block and vocabulary tile one graph computes z = cap(E_c·h), the tile's
   * softmax and its argmax, and with `g` the term (g·softmax_c·cap′)·E_c through a transposed tile; the host
   * reads lse_c and the target's logit, and folds each term into the row's gradient rescaled online by
   * exp(lse_c − lse). The target term −g·cap′(z_t)·E[t] is added at the end.
   */
  pass(
    h: tf.Tensor2D,
    targets: readonly number[],
    softcap: number | null,
    g: Float32Array | undefined,
  ): { lse: Float64Array; zt: Float64Array; dh?: tf.Tensor2D } {
    const [n, H] = h.shape;
    const hv = h.dataSync() as Float32Array;
    const lse = new Float64Array(n).fill(-Infinity);
    const zt = new Float64Array(n);
    const dh = g ? new Float32Array(n * H) : undefined;
    const acc = g ? new Float64Array(n * H) : undefined;
    const base = this.rt.libs.base;
    const transposedType = this.storage === "native-f32" ? GgmlType.F32 : GgmlType.BF16;
    for (let r0 = 0; r0 < n; r0 += this.tokenBlock) {
      const b = Math.min(n, r0 + this.tokenBlock) - r0;
      const hb = hv.subarray(r0 * H, (r0 + b) * H);
      const gb = g?.subarray(r0, r0 + b);
      for (let v0 = 0; v0 < this.vocab; v0 += this.chunk) {
        const vc = Math.min(this.chunk, this.vocab - v0);
        this.rt.compute(
          (bld) => {
            const { g: f, ctx } = bld;
            const tile = this.rowsView(ctx, v0, vc);
            const { zc, th } = capped(f, ctx, f.mulMat(ctx, tile, bld.input(hb, H, b)), softcap); // [b rows of vc]
            const p = f.softMax(ctx, zc);
            const out = [zc, p, f.argmax(ctx, p)];
            if (gb) {
              const slope = th ? f.sub(ctx, p, f.mul(ctx, p, f.sqr(ctx, th))) : p; // softmax_c·cap′
              const dz = f.mul(ctx, slope, bld.input(Float32Array.from(gb), 1, b)); // × g per row
              const tileT = f.cast(ctx, f.transpose(ctx, tile), transposedType); // E_cᵀ [H rows of vc]
              out.push(f.mulMat(ctx, tileT, dz)); // [b rows of H]
            }
            return out;
          },
          ([zcT, pT, amT, termT]) => {
            const zcv = floatView(base.getData(zcT), b * vc);
            const pv = floatView(base.getData(pT), b * vc);
            const am = int32View(base.getData(amT), b);
            const term = termT ? floatView(base.getData(termT), b * H) : undefined;
            for (let i = 0; i < b; i++) {
              const row = r0 + i;
              const j = am[i]!;
              const chunkLse = zcv[i * vc + j]! - Math.log(pv[i * vc + j]!);
              const t = targets[row]! - v0;
              if (t >= 0 && t < vc) zt[row] = zcv[i * vc + t]!;
              const next = logAddExp(lse[row]!, chunkLse);
              if (term) {
                const keep = Math.exp(lse[row]! - next); // 0 on the first tile
                const add = Math.exp(chunkLse - next);
                const a = acc!.subarray(row * H, (row + 1) * H);
                for (let k = 0; k < H; k++) a[k] = a[k]! * keep + add * term[i * H + k]!;
              }
              lse[row] = next;
            }
          },
        );
      }
    }
    if (!g) return { lse, zt };
    // Minus the target term: g·cap′(z_t)·E[t], cap′ = 1 − (z_t/cap)².
    const et = this.lookup(targets);
    const ev = et.dataSync() as Float32Array;
    et.dispose();
    for (let row = 0; row < n; row++) {
      const slope = softcap === null ? 1 : 1 - (zt[row]! / softcap) ** 2;
      const c = g[row]! * slope;
      for (let k = 0; k < H; k++) dh![row * H + k] = acc![row * H + k]! - c * ev[row * H + k]!;
    }
    return { lse, zt, dh: tf.tensor2d(dh!, [n, H]) };
  }

  dispose(): void {
    this.e?.dispose();
    this.e = undefined;
  }
}

/** cap·tanh(z/cap) in the graph (and tanh itself, for the slope); z unchanged without a soft-cap. */
function capped(g: GgmlBase, ctx: Ptr, z: Ptr, softcap: number | null): { zc: Ptr; th?: Ptr } {
  if (softcap === null) return { zc: z };
  const th = g.tanh(ctx, g.scale(ctx, z, 1 / softcap));
  return { zc: g.scale(ctx, th, softcap), th };
}
