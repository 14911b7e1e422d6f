// The tied token embedding: input lookup (E[id]) and the LM head (logits = h·Eᵀ, soft-capped), with a
// cross-entropy whose [tokens, vocab] logits exist only one [block, chunk] tile at a time, forward and
// backward (the backward recomputes each tile). Reference: spec/gemma4.md §3.1 steps 1, 5, 6.
//
// Kernel choices (measured on wasm, see BENCHMARKS.md ## model): E is stored as vocabulary chunks of
// Eᵀ [H, Vc] so the head is a plain matMul h·Eᵀ_c; exp and tanh run at 9 and 22 ns/element on wasm while
// sigmoid and softmax (XNNPACK) run near 1, so tanh(x) is formed as 2σ(2x)−1 and each chunk's
// log-sum-exp as max(z) − log(max(softmax(z))), chunks combined in float64 on the host.
//
// Where the chunks live: a small table stays on the backend (`device`); a large one (E2B's is 403 M
// values) stays on the host as bf16 or f32 row chunks and each tile is widened into a short-lived backend
// tensor when the head needs it, so a large table never occupies the (wasm: 4 GiB) backend heap.
import * as tf from "@tensorflow/tfjs";
import { ChunkedRows, filledTensor, type HostDtype } from "./host-tables.js";
import { customGrad } from "./autograd.js";

/** Vocabulary columns per head tile: 16 tiles for the 262,144-token vocabulary. */
export const DEFAULT_VOCAB_CHUNK = 16_384;
/** Token rows per head tile: a [512, 16384] float tile is 32 MiB. */
export const DEFAULT_TOKEN_BLOCK = 512;
/**
 * Largest embedding for which training keeps a second, row-major copy of E for the head's gradient
 * (gemma4-tiny: 128 MiB). The copy costs twice its size on wasm (it is also packed, see below).
 */
export const ROW_MAJOR_COPY_MAX_BYTES = 256 * 2 ** 20;
/**
 * Largest float32 table `auto` keeps on the backend. tfjs-wasm keeps an XNNPACK operator with a packed
 * copy of the right-hand matMul operand for as long as that tensor lives (batch_mat_mul_impl.cc: "we
 * assume b is the weights"), so a resident Eᵀ costs twice its size there. Above this size the tiles stay
 * on the host and each is copied (widened, for bf16) into a short-lived tensor per use: one copy of E in
 * memory, at the price of one copy of each tile per call.
 */
export const DEVICE_EMBEDDING_MAX_BYTES = 256 * 2 ** 20;

/**
 * Where the embedding's tiles live: on the backend (float32), on the host as f32 or bf16, or in ggml
 * memory (`native-f32` / `native-bf16`: native-head.ts).
 */
export type EmbeddingStorage = "device" | HostDtype | "native-f32" | "native-bf16";

/** What the model asks of its tied embedding E [V, H]: the input lookup and the LM head. */
export interface TokenEmbedding {
  readonly vocab: number;
  readonly hidden: number;
  readonly storage: EmbeddingStorage;
  /** Bytes held. */
  readonly bytes: number;
  /** E[ids]: [n] → [n, H], no gradient. */
  lookup(ids: ArrayLike<number>): tf.Tensor2D;
  /** Full soft-capped logits: [N, H] → [N, V]. */
  logits(h: tf.Tensor2D, softcap: number | null): tf.Tensor2D;
  /** log p(target) per row (NaN where the target is negative); no gradient. */
  targetLogprobs(h: tf.Tensor2D, targets: ArrayLike<number>, softcap: number | null): Float32Array;
  /** Σ weight·(−log p(target)), differentiable with respect to h. */
  nllSum(h: tf.Tensor2D, targets: ArrayLike<number>, weights: ArrayLike<number>, softcap: number | null): tf.Scalar;
  dispose(): void;
}

/** One sweep of the head over the vocabulary for rows h [n, H] (see EmbeddingTable.pass). */
export interface HeadPass {
  pass(
    h: tf.Tensor2D,
    targets: readonly number[],
    softcap: number | null,
    g: Float32Array | undefined,
  ): { lse: Float64Array; zt: Float64Array; dh?: tf.Tensor2D };
}

export interface EmbeddingOptions {
  vocabChunk?: number;
  tokenBlock?: number;
  rowMajorCopyMaxBytes?: number;
  /** Default: `device` up to DEVICE_EMBEDDING_MAX_BYTES of float32, else host `f32`. */
  storage?: "device" | HostDtype;
}

/** Tied embedding E [V, H] held as vocabulary chunks: Eᵀ_c [H, Vc] on the backend, or E_c [Vc, H] on the host. */
export class EmbeddingTable implements TokenEmbedding, HeadPass {
  readonly vocab: number;
  readonly hidden: number;
  readonly chunk: number;
  readonly tokenBlock: number;
  readonly storage: "device" | HostDtype;
  /** Tiles by index: Eᵀ_c [H, vc] backend tensors (`device`), or chunk c of E's rows on the host (f32 / bf16). */
  private deviceTiles: tf.Tensor2D[];
  private host: ChunkedRows | undefined;
  private rows: tf.Tensor2D[] | undefined;

  private readonly rowMajorCopyMaxBytes: number;

  /** `e` is the HF `embed_tokens.weight`, row-major [vocab, hidden]; undefined leaves the tiles to `load`. */
  constructor(e: Float32Array | undefined, vocab: number, hidden: number, options: EmbeddingOptions = {}) {
    if (e && e.length !== vocab * hidden) throw new RangeError(`embed_tokens.weight: ${e.length} values, expected [${vocab}, ${hidden}]`);
    this.vocab = vocab;
    this.hidden = hidden;
    this.chunk = Math.min(options.vocabChunk ?? DEFAULT_VOCAB_CHUNK, vocab);
    this.tokenBlock = options.tokenBlock ?? DEFAULT_TOKEN_BLOCK;
    this.rowMajorCopyMaxBytes = options.rowMajorCopyMaxBytes ?? ROW_MAJOR_COPY_MAX_BYTES;
    this.storage = options.storage ?? (4 * vocab * hidden <= DEVICE_EMBEDDING_MAX_BYTES ? "device" : "f32");
    this.deviceTiles = [];
    // Host chunks of exactly one tile of rows each.
    if (this.storage !== "device")
      this.host = new ChunkedRows(vocab, hidden, this.storage, this.chunk * hidden * (this.storage === "bf16" ? 2 : 4));
    if (e)
      for (let c = 0; c < this.tileCount; c++)
        this.setTile(c, e.subarray(c * this.chunk * hidden, Math.min(vocab, (c + 1) * this.chunk) * hidden));
  }

  /**
   * A table filled tile by tile from `read(start, count)` (float32 rows of E, e.g. a TensorSource's
   * `readRows`): at most one tile of float32 rows exists besides the table.
   */
  static async load(
    read: (start: number, count: number) => Promise<Float32Array>,
    vocab: number,
    hidden: number,
    options: EmbeddingOptions = {},
  ): Promise<EmbeddingTable> {
    const table = new EmbeddingTable(undefined, vocab, hidden, options);
    try {
      for (let c = 0; c < table.tileCount; c++) {
        const v0 = c * table.chunk;
        table.setTile(c, await read(v0, Math.min(table.chunk, vocab - v0)));
      }
    } catch (e) {
      table.dispose();
      throw e;
    }
    return table;
  }

  private get tileCount(): number {
    return Math.ceil(this.vocab / this.chunk);
  }

  private tileWidth(c: number): number {
    return Math.min(this.chunk, this.vocab - c * this.chunk);
  }

  /** Stores rows c·Vc … of E (row-major [vc, H]) as tile c: on the backend transposed to Eᵀ_c [H, vc], on the host as they are. */
  private setTile(c: number, rowsE: Float32Array): void {
    const vc = this.tileWidth(c);
    const H = this.hidden;
    if (rowsE.length !== vc * H) throw new RangeError(`embedding tile ${c}: ${rowsE.length} values, expected [${vc}, ${H}]`);
    if (this.storage === "device") {
      const t = new Float32Array(H * vc); // [H, vc] = rows v0..v0+vc of E, transposed
      for (let v = 0; v < vc; v++) {
        const row = v * H;
        for (let h = 0; h < H; h++) t[h * vc + v] = rowsE[row + h]!;
      }
      this.deviceTiles[c] = tf.tensor2d(t, [H, vc]);
    } else {
      this.host!.setRows(c * this.chunk, rowsE);
    }
  }

  /**
   * Runs `f` on tile c as a backend tensor: the resident Eᵀ_c [H, vc] (`device`), or a short-lived
   * E_c [vc, H] widened from the host copy (disposed after `f`).
   */
  private withTile<T>(c: number, f: (tile: Tile) => T): T {
    if (this.storage === "device") return f({ eT: this.deviceTiles[c]! });
    const e = filledTensor<tf.Rank.R2>([this.tileWidth(c), this.hidden], (dst) => this.host!.widenChunk(c, dst));
    try {
      return f({ e });
    } finally {
      e.dispose();
    }
  }

  /** Bytes held (backend or host). */
  get bytes(): number {
    return (this.storage === "bf16" ? 2 : 4) * this.vocab * this.hidden;
  }

  /** E[ids]: [n] → [n, H]. No gradient path (the embedding is frozen), so no UnsortedSegmentSum. */
  lookup(ids: ArrayLike<number>): tf.Tensor2D {
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocab)
        throw new RangeError(`token id ${id} outside the vocabulary [0, ${this.vocab})`);
    }
    if (this.host) {
      const out = new Float32Array(ids.length * this.hidden);
      this.host.gather(ids, out);
      return tf.tensor2d(out, [ids.length, this.hidden]);
    }
    const n = ids.length;
    const byChunk = new Map<number, number[]>(); // chunk → positions in `ids`
    for (let i = 0; i < n; i++) {
      const c = Math.floor(ids[i]! / this.chunk);
      let list = byChunk.get(c);
      if (!list) byChunk.set(c, (list = []));
      list.push(i);
    }
    return tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      const order: number[] = [];
      for (const [c, positions] of [...byChunk].sort((a, b) => a[0] - b[0])) {
        const local = tf.tensor1d(
          positions.map((i) => ids[i]! - c * this.chunk),
          "int32",
        );
        parts.push(tf.gather(this.deviceTiles[c]!, local, 1)); // [H, n_c]
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
    return tf.tidy(() => {
      const parts: tf.Tensor2D[] = [];
      for (let c = 0; c < this.tileCount; c++) parts.push(this.withTile(c, (tile) => capLogits(headProduct(h, tile), softcap)));
      return tf.concat(parts, 1);
    });
  }

  /**
   * log p(target) per row under softmax(softcap(h·Eᵀ)): h [N, H], targets [N] → Float32Array [N].
   * Rows whose target is negative get NaN (nothing to score). No gradient.
   */
  targetLogprobs(h: tf.Tensor2D, targets: ArrayLike<number>, softcap: number | null): Float32Array {
    return targetLogprobsWith(this, h, targets, softcap);
  }

  /**
   * Σ weight·(−log p(target)) over rows, a scalar whose gradient flows to h only. Rows with weight 0
   * cost nothing. h [N, H]; targets, weights [N]. Under a gradient tape the gradient is formed in the
   * same sweep over the vocabulary as the value (no second pass): per tile, (g·softmax_c·cap′)·E_c is
   * kept as a [rows, H] term and rescaled by exp(lse_c − lse) once the row's full lse is known.
   */
  nllSum(h: tf.Tensor2D, targets: ArrayLike<number>, weights: ArrayLike<number>, softcap: number | null): tf.Scalar {
    return nllSumWith(this, h, targets, weights, softcap);
  }

  /**
   * One sweep over the vocabulary for rows h [n, H]: lse and soft-capped target logit per row (float64,
   * on the host), and with `g` (∂loss/∂nll per row) the gradient ∂(Σ g·nll)/∂h [n, H]:
   * Σ_c exp(lse_c − lse)·(g·softmax_c(z)·cap′(z))·E_c − g·cap′(z_t)·E[t].
   */
  pass(
    h: tf.Tensor2D,
    targets: readonly number[],
    softcap: number | null,
    g: Float32Array | undefined,
  ): { lse: Float64Array; zt: Float64Array; dh?: tf.Tensor2D } {
    const n = h.shape[0];
    const lse = new Float64Array(n).fill(-Infinity);
    const zt = new Float64Array(n);
    const dhBlocks: tf.Tensor2D[] = [];
    const rowsE = g ? this.rowMajorChunks() : undefined;
    for (let r0 = 0; r0 < n; r0 += this.tokenBlock) {
      const b = Math.min(n, r0 + this.tokenBlock) - r0;
      const block = tf.slice(h, [r0, 0], [b, -1]);
      const gCol = g ? tf.tensor2d(g.subarray(r0, r0 + b), [b, 1]) : undefined;
      const chunkLse: Float64Array[] = [];
      const terms: tf.Tensor2D[] = [];
      for (let c = 0; c < this.tileCount; c++) {
        const [m, s, term] = this.withTile(c, (tile) =>
          tf.tidy(() => {
            const { z, slope } = capWithSlope(headProduct(block, tile), softcap, gCol !== undefined); // [b, Vc]
            const sm = tf.softmax(z);
            const out: tf.Tensor[] = [tf.max(z, 1), tf.max(sm, 1)]; // chunk lse = max − log(softmax at the max)
            if (gCol) {
              const dz = tf.mul(slope ? tf.mul(sm, slope) : sm, gCol);
              // dz·E_c: a plain product with the row-major copy or the host tile, else (Eᵀ_c·dzᵀ)ᵀ on the stored Eᵀ_c.
              out.push(
                tile.e ? tf.matMul(dz, tile.e) : rowsE ? tf.matMul(dz, rowsE[c]!) : tf.transpose(tf.matMul(tile.eT!, tf.transpose(dz))),
              );
            }
            return out;
          }),
        );
        const mv = m!.dataSync();
        const sv = s!.dataSync();
        tf.dispose([m!, s!]);
        const l = Float64Array.from({ length: b }, (_, i) => mv[i]! - Math.log(sv[i]!));
        for (let i = 0; i < b; i++) lse[r0 + i] = logAddExp(lse[r0 + i]!, l[i]!);
        chunkLse.push(l);
        if (term) terms.push(term as tf.Tensor2D);
      }
      const et = this.lookup(targets.slice(r0, r0 + b));
      const [t, dh] = tf.tidy(() => {
        const { z, slope } = capWithSlope(tf.sum(tf.mul(block, et), 1, true), softcap, gCol !== undefined); // [b, 1]
        if (!gCol) return [z];
        // Rescale each tile's term by exp(lse_c − lse), now that lse is complete; minus the target term.
        let acc = tf.neg(tf.mul(et, slope ? tf.mul(gCol, slope) : gCol));
        terms.forEach((term, c) => {
          const alpha = Float32Array.from(chunkLse[c]!, (v, i) => Math.exp(v - lse[r0 + i]!));
          acc = tf.add(acc, tf.mul(term, tf.tensor2d(alpha, [b, 1])));
        });
        return [z, acc];
      });
      const tv = t!.dataSync();
      for (let i = 0; i < b; i++) zt[r0 + i] = tv[i]!;
      tf.dispose([t!, block, et, ...terms, ...(gCol ? [gCol] : [])]);
      if (dh) dhBlocks.push(dh as tf.Tensor2D);
    }
    if (!g) return { lse, zt };
    const dh = dhBlocks.length === 1 ? dhBlocks[0]! : (tf.concat(dhBlocks, 0) as tf.Tensor2D);
    if (dhBlocks.length > 1) tf.dispose(dhBlocks);
    return { lse, zt, dh };
  }

  /**
   * E as row-major chunks [Vc, H], made on the first gradient when E is small enough: dz·E_c is then a
   * plain matMul (measured ~2× faster than Eᵀ_c·dzᵀ plus the transposes it needs).
   */
  private rowMajorChunks(): tf.Tensor2D[] | undefined {
    if (this.storage !== "device" || 4 * this.vocab * this.hidden > this.rowMajorCopyMaxBytes) return undefined;
    this.rows ??= this.deviceTiles.map((ec) => tf.keep(tf.transpose(ec)));
    return this.rows;
  }

  dispose(): void {
    for (const c of this.deviceTiles) c.dispose();
    this.deviceTiles = [];
    this.host?.dispose();
    if (this.rows) tf.dispose(this.rows);
    this.rows = undefined;
  }
}

/** One vocabulary tile on the backend: the resident Eᵀ_c [H, vc], or a short-lived E_c [vc, H] from the host. */
interface Tile {
  eT?: tf.Tensor2D;
  e?: tf.Tensor2D;
}

/**
 * h·Eᵀ_c [b, vc]. The resident Eᵀ_c is the right operand (XNNPACK packs it once and keeps the packed
 * copy); a tile uploaded per use is the left operand, (E_c·hᵀ)ᵀ, so it is never packed (packing the
 * 16,384 × 1,536 tile costs more than the product for a few tokens: bench/weights.bench.ts).
 */
function headProduct(h: tf.Tensor2D, tile: Tile): tf.Tensor2D {
  if (tile.eT) return tf.matMul<tf.Tensor2D>(h, tile.eT);
  return tf.tidy(() => tf.transpose(tf.matMul<tf.Tensor2D>(tile.e!, tf.transpose(h))));
}

/** cap·tanh(x/cap), as 2cap·σ(2x/cap) − cap (wasm's sigmoid is ~20× faster than its tanh). */
export function capLogits<T extends tf.Tensor>(x: T, softcap: number | null): T {
  if (softcap === null) return x;
  return tf.tidy(() => tf.sub(tf.mul(tf.sigmoid(tf.mul(x, 2 / softcap)), 2 * softcap), softcap)) as T;
}

/** cap·tanh(x/cap) and, when asked, its slope 1 − tanh² = 4σ(1 − σ) with σ = σ(2x/cap) (undefined: slope 1). */
function capWithSlope<T extends tf.Tensor>(x: T, softcap: number | null, wantSlope: boolean): { z: T; slope: T | undefined } {
  if (softcap === null) return { z: x, slope: undefined };
  const sig = tf.sigmoid(tf.mul(x, 2 / softcap));
  const z = tf.sub(tf.mul(sig, 2 * softcap), softcap) as T;
  return { z, slope: wantSlope ? (tf.mul(tf.mul(sig, tf.sub(1, sig)), 4) as T) : undefined };
}

/** log(eᵃ + eᵇ) without overflow; −∞ is the identity. */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}

/** `TokenEmbedding.targetLogprobs` over any head sweep: rows with a target go through `pass` once. */
export function targetLogprobsWith(head: HeadPass, h: tf.Tensor2D, targets: ArrayLike<number>, softcap: number | null): Float32Array {
  const out = new Float32Array(targets.length).fill(Number.NaN);
  const rows: number[] = [];
  for (let i = 0; i < targets.length; i++) if (targets[i]! >= 0) rows.push(i);
  if (rows.length === 0) return out;
  const sel = tf.gather(h, tf.tensor1d(rows, "int32"));
  const { lse, zt } = head.pass(
    sel,
    rows.map((i) => targets[i]!),
    softcap,
    undefined,
  );
  sel.dispose();
  rows.forEach((r, j) => (out[r] = zt[j]! - lse[j]!));
  return out;
}

/**
 * `TokenEmbedding.nllSum` over any head sweep: a scalar whose gradient flows to h only; rows with weight
 * 0 cost nothing. Under a gradient tape the gradient is formed in the same sweep as the value.
 */
export function nllSumWith(
  head: HeadPass,
  h: tf.Tensor2D,
  targets: ArrayLike<number>,
  weights: ArrayLike<number>,
  softcap: number | null,
): tf.Scalar {
  const [N, H] = h.shape;
  const rows: number[] = [];
  for (let i = 0; i < N; i++) if (weights[i]! !== 0) rows.push(i);
  const rowTargets = rows.map((i) => targets[i]!);
  const rowWeights = Float32Array.from(rows, (i) => weights[i]!);
  const taping = tf.engine().state.gradientDepth > 0;
  const f = customGrad(([hIn]: [tf.Tensor2D], save) => {
    let total = 0;
    let dh: tf.Tensor2D | undefined;
    if (rows.length > 0) {
      const hSel = tf.gather(hIn, tf.tensor1d(rows, "int32"));
      const r = head.pass(hSel, rowTargets, softcap, taping ? rowWeights : undefined);
      hSel.dispose();
      for (let j = 0; j < rows.length; j++) total += rowWeights[j]! * (r.lse[j]! - r.zt[j]!);
      dh = r.dh;
    }
    save(dh ? [dh] : []);
    dh?.dispose(); // save() kept a copy
    return {
      value: tf.scalar(total) as tf.Scalar,
      gradFunc: (dy: tf.Scalar, saved: tf.Tensor[]) => {
        if (rows.length === 0) return [tf.zeros([N, H])];
        const dyScale = (dy.dataSync() as Float32Array)[0]!;
        const sel = saved[0]!.dataSync() as Float32Array;
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
