// The tied token embedding: input lookup (E[id]) and the LM head (logits = h·Eᵀ, soft-capped), with a
// cross-entropy whose [tokens, vocab] logits exist only one [block, chunk] tile at a time, forward and
// backward (the backward recomputes each tile). Reference: spec/gemma4.md §3.1 steps 1, 5, 6.
//
// Kernel choices (measured on wasm, see BENCHMARKS.md ## model): E is stored as vocabulary chunks of
// Eᵀ [H, Vc] so the head is a plain matMul h·Eᵀ_c; exp and tanh run at 9 and 22 ns/element on wasm while
// sigmoid and softmax (XNNPACK) run near 1, so tanh(x) is formed as 2σ(2x)−1 and each chunk's
// log-sum-exp as max(z) − log(max(softmax(z))), chunks combined in float64 on the host.
import * as tf from "@tensorflow/tfjs";
import { customGrad } from "./linear.js";

/** Vocabulary columns per head tile: 16 tiles for the 262,144-token vocabulary. */
export const DEFAULT_VOCAB_CHUNK = 16_384;
/** Token rows per head tile: a [512, 16384] float tile is 32 MiB. */
export const DEFAULT_TOKEN_BLOCK = 512;

/** Tied embedding E [V, H] held as Eᵀ chunks [H, Vc] on the backend. */
export class EmbeddingTable {
  readonly vocab: number;
  readonly hidden: number;
  readonly chunk: number;
  readonly tokenBlock: number;
  private chunks: tf.Tensor2D[];

  /** `e` is the HF `embed_tokens.weight`, row-major [vocab, hidden]. */
  constructor(e: Float32Array, vocab: number, hidden: number, options: { vocabChunk?: number; tokenBlock?: number } = {}) {
    if (e.length !== vocab * hidden) throw new RangeError(`embed_tokens.weight: ${e.length} values, expected [${vocab}, ${hidden}]`);
    this.vocab = vocab;
    this.hidden = hidden;
    this.chunk = Math.min(options.vocabChunk ?? DEFAULT_VOCAB_CHUNK, vocab);
    this.tokenBlock = options.tokenBlock ?? DEFAULT_TOKEN_BLOCK;
    this.chunks = [];
    for (let v0 = 0; v0 < vocab; v0 += this.chunk) {
      const vc = Math.min(this.chunk, vocab - v0);
      const t = new Float32Array(hidden * vc); // [H, vc] = rows v0..v0+vc of E, transposed
      for (let v = 0; v < vc; v++) {
        const row = (v0 + v) * hidden;
        for (let h = 0; h < hidden; h++) t[h * vc + v] = e[row + h]!;
      }
      this.chunks.push(tf.tensor2d(t, [hidden, vc]));
    }
  }

  get bytes(): number {
    return 4 * this.vocab * this.hidden;
  }

  /** E[ids]: [n] → [n, H]. No gradient path (the embedding is frozen), so no UnsortedSegmentSum. */
  lookup(ids: ArrayLike<number>): tf.Tensor2D {
    const n = ids.length;
    const byChunk = new Map<number, number[]>(); // chunk → positions in `ids`
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab) throw new RangeError(`token id ${id} outside the vocabulary [0, ${this.vocab})`);
      const c = Math.floor(id / this.chunk);
      let list = byChunk.get(c);
      if (!list) byChunk.set(c, (list = []));
      list.push(i);
    }
    return tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      const order: number[] = [];
      for (const [c, positions] of [...byChunk].sort((a, b) => a[0] - b[0])) {
        const local = tf.tensor1d(positions.map((i) => ids[i]! - c * this.chunk), "int32");
        parts.push(tf.gather(this.chunks[c]!, local, 1)); // [H, n_c]
        order.push(...positions);
      }
      const grouped = tf.transpose(parts.length === 1 ? parts[0]! : tf.concat(parts, 1)); // [H, n] → [n, H]
      if (order.every((p, i) => p === i)) return grouped;
      const inverse = new Int32Array(n);
      order.forEach((p, i) => (inverse[p] = i));
      return tf.gather(grouped, tf.tensor1d(inverse, "int32"));
    });
  }

  /** Full logits h·Eᵀ, soft-capped: [N, H] → [N, V]. For few rows (generation) or small vocabularies. */
  logits(h: tf.Tensor2D, softcap: number | null): tf.Tensor2D {
    return tf.tidy(() => tf.concat(this.chunks.map((ec) => capLogits(tf.matMul<tf.Tensor2D>(h, ec), softcap)), 1));
  }

  /**
   * log p(target) per row under softmax(softcap(h·Eᵀ)): h [N, H], targets [N] → Float32Array [N].
   * Rows whose target is negative get NaN (nothing to score). No gradient.
   */
  targetLogprobs(h: tf.Tensor2D, targets: ArrayLike<number>, softcap: number | null): Float32Array {
    const out = new Float32Array(targets.length).fill(Number.NaN);
    const rows: number[] = [];
    for (let i = 0; i < targets.length; i++) if (targets[i]! >= 0) rows.push(i);
    if (rows.length === 0) return out;
    const sel = tf.gather(h, tf.tensor1d(rows, "int32"));
    const { lse, zt } = this.stats(sel, rows.map((i) => targets[i]!), softcap);
    sel.dispose();
    rows.forEach((r, j) => (out[r] = zt[j]! - lse[j]!));
    return out;
  }

  /**
   * Σ weight·(−log p(target)) over rows, a scalar whose gradient flows to h only. Rows with weight 0
   * cost nothing. h [N, H]; targets, weights [N].
   */
  nllSum(h: tf.Tensor2D, targets: ArrayLike<number>, weights: ArrayLike<number>, softcap: number | null): tf.Scalar {
    const [N, H] = h.shape;
    const rows: number[] = [];
    for (let i = 0; i < N; i++) if (weights[i]! !== 0) rows.push(i);
    const rowTargets = rows.map((i) => targets[i]!);
    const rowWeights = Float64Array.from(rows, (i) => weights[i]!);
    const f = customGrad(([hIn]: [tf.Tensor2D], save) => {
      const hSel: tf.Tensor2D = rows.length > 0 ? tf.gather(hIn, tf.tensor1d(rows, "int32")) : tf.zeros([0, H]);
      const { lse, zt } = rows.length > 0 ? this.stats(hSel, rowTargets, softcap) : { lse: new Float64Array(0), zt: new Float64Array(0) };
      let total = 0;
      for (let j = 0; j < rows.length; j++) total += rowWeights[j]! * (lse[j]! - zt[j]!);
      save([hSel]);
      return {
        value: tf.scalar(total) as tf.Scalar,
        gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => {
          if (rows.length === 0) return [tf.zeros([N, H])];
          const g = Float32Array.from(rowWeights); // ∂/∂nll_j, times dy below
          const dySel = this.nllGrad(saved[0] as tf.Tensor2D, rowTargets, lse, g, softcap); // [n, H]
          const dyScale = (dy.dataSync() as Float32Array)[0]!;
          const sel = dySel.dataSync() as Float32Array;
          dySel.dispose();
          const full = new Float32Array(N * H); // scatter the selected rows back on the host
          for (let j = 0; j < rows.length; j++) {
            const dst = rows[j]! * H;
            for (let k = 0; k < H; k++) full[dst + k] = dyScale * sel[j * H + k]!;
          }
          return [tf.tensor2d(full, [N, H])];
        },
      };
    });
    return f(h);
  }

  /** lse and target logit (soft-capped) per row, in float64 on the host. */
  private stats(h: tf.Tensor2D, targets: readonly number[], softcap: number | null): { lse: Float64Array; zt: Float64Array } {
    const n = h.shape[0];
    const lse = new Float64Array(n).fill(-Infinity);
    const zt = new Float64Array(n);
    for (let r0 = 0; r0 < n; r0 += this.tokenBlock) {
      const r1 = Math.min(n, r0 + this.tokenBlock);
      const block = tf.tidy(() => tf.slice(h, [r0, 0], [r1 - r0, -1]));
      for (const ec of this.chunks) {
        const [m, s] = tf.tidy(() => {
          const z = capLogits(tf.matMul(block, ec), softcap); // [b, Vc]
          return [tf.max(z, 1), tf.max(tf.softmax(z), 1)]; // chunk lse = max − log(softmax at the max)
        });
        const mv = m.dataSync();
        const sv = s.dataSync();
        m.dispose();
        s.dispose();
        for (let i = 0; i < r1 - r0; i++) lse[r0 + i] = logAddExp(lse[r0 + i]!, mv[i]! - Math.log(sv[i]!));
      }
      const t = tf.tidy(() => capLogits(tf.sum(tf.mul(block, this.lookup(targets.slice(r0, r1))), 1), softcap));
      const tv = t.dataSync();
      t.dispose();
      block.dispose();
      for (let i = 0; i < r1 - r0; i++) zt[r0 + i] = tv[i]!;
    }
    return { lse, zt };
  }

  /** ∂(Σ g_j·nll_j)/∂h for rows h [n, H]: Σ_c (g·softmax·cap′)·E_c − g·cap′(z_t)·E[t]. One tile alive at a time. */
  private nllGrad(h: tf.Tensor2D, targets: readonly number[], lse: Float64Array, g: Float32Array, softcap: number | null): tf.Tensor2D {
    const n = h.shape[0];
    const blocks: tf.Tensor2D[] = [];
    for (let r0 = 0; r0 < n; r0 += this.tokenBlock) {
      const r1 = Math.min(n, r0 + this.tokenBlock);
      const block = tf.slice(h, [r0, 0], [r1 - r0, -1]);
      const lseCol = tf.tensor2d(Float32Array.from(lse.subarray(r0, r1)), [r1 - r0, 1]);
      const gCol = tf.tensor2d(g.subarray(r0, r1), [r1 - r0, 1]);
      const et = this.lookup(targets.slice(r0, r1));
      // The target term first: −g·cap′(z_t)·E[t].
      let dh = tf.tidy(() => {
        const zt = capLogits(tf.sum(tf.mul(block, et), 1, true), softcap);
        return tf.neg(tf.mul(et, softcap !== null ? tf.mul(gCol, capSlope(zt, softcap)) : gCol)) as tf.Tensor2D;
      });
      for (const ec of this.chunks) {
        const next = tf.tidy(() => {
          const z = capLogits(tf.matMul(block, ec), softcap); // recomputed [b, Vc]
          // p = exp(z − lse) = softmax_c(z)·exp(lse_c − lse), lse_c = max − log(max softmax)
          const sm = tf.softmax(z);
          const lseC = tf.sub(tf.max(z, 1, true), tf.log(tf.max(sm, 1, true)));
          let dz = tf.mul(sm, tf.mul(tf.exp(tf.sub(lseC, lseCol)), gCol));
          if (softcap !== null) dz = tf.mul(dz, capSlope(z, softcap));
          // dz·E_c = (Eᵀ_c·dzᵀ)ᵀ: a plain matMul on the stored Eᵀ_c
          return tf.add(dh, tf.transpose(tf.matMul(ec, tf.transpose(dz)))) as tf.Tensor2D;
        });
        dh.dispose();
        dh = next;
      }
      tf.dispose([block, lseCol, gCol, et]);
      blocks.push(dh);
    }
    if (blocks.length === 1) return blocks[0]!;
    const out = tf.concat(blocks, 0) as tf.Tensor2D;
    tf.dispose(blocks);
    return out;
  }

  dispose(): void {
    for (const c of this.chunks) c.dispose();
    this.chunks = [];
  }
}

/** cap·tanh(x/cap), as 2cap·σ(2x/cap) − cap (wasm's sigmoid is ~20× faster than its tanh). */
export function capLogits<T extends tf.Tensor>(x: T, softcap: number | null): T {
  if (softcap === null) return x;
  return tf.tidy(() => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2 / softcap)), 2 * softcap), softcap)) as T;
}

/** d(cap·tanh(x/cap))/dx = 1 − (z/cap)², from the capped value z. */
function capSlope(z: tf.Tensor, softcap: number): tf.Tensor {
  return tf.tidy(() => tf.sub(1, tf.square(tf.div(z, softcap))));
}

function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}
