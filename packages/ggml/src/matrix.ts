// A frozen weight W [out, in] (HF layout) held in ggml memory as f32, bf16, Q8_0, Q4_0 or Q4_K, with the
// two products a model and its LoRA gradients need: y = x·Wᵀ and dx = dy·W, both through ggml_mul_mat.
// `ggml_mul_mat(a, b)` computes b·aᵀ with both operands contiguous along the shared dimension, so dy·W
// wants Wᵀ: a copy stored in the same type (fast), or formed per product in the graph (half the memory).
// Q4_0 / Q4_K are uploaded into the CPU_REPACK buffer type where ggml repacks them (x86 with AVX2, rows a
// multiple of 8: ggml-cpu/repack.cpp ggml_repack_get_optimal_repack_type).
import { ggmlRuntime, floatView, type GgmlRuntime } from "./runtime.js";
import type { Ptr } from "./library.js";
import { ggmlQuantize } from "./quantize.js";
import { GgmlType, ggmlNBytes, ggmlTypeInfo, ggmlTypeName } from "./types.js";

/** Storage types of a frozen base weight (the recipe's `base_dtype`). */
export const BASE_DTYPES = ["f32", "bf16", "q8_0", "q4_0", "q4_k"] as const;
export type BaseDtype = (typeof BASE_DTYPES)[number];

const TYPE_OF: Record<BaseDtype, number> = {
  f32: GgmlType.F32,
  bf16: GgmlType.BF16,
  q8_0: GgmlType.Q8_0,
  q4_0: GgmlType.Q4_0,
  q4_k: GgmlType.Q4_K,
};

/** Bytes per value of each base dtype (for memory plans): block bytes / block values. */
export function baseDtypeBytes(dtype: BaseDtype): number {
  const info = ggmlTypeInfo(TYPE_OF[dtype])!;
  return info.bytes / info.block;
}

/**
 * The ggml type that stores rows of `rowLength` values for `dtype`: the dtype's own type when its block
 * divides the row, else the next that does (Q4_K → Q4_0 → BF16; Q8_0 / Q4_0 → BF16).
 */
export function storageType(dtype: BaseDtype, rowLength: number): number {
  const chain =
    dtype === "q4_k"
      ? [GgmlType.Q4_K, GgmlType.Q4_0, GgmlType.BF16]
      : dtype === "q8_0" || dtype === "q4_0"
        ? [TYPE_OF[dtype], GgmlType.BF16]
        : [TYPE_OF[dtype]];
  return chain.find((t) => rowLength % ggmlTypeInfo(t)!.block === 0)!;
}

/**
 * How dy·W gets Wᵀ: a copy stored in the same type, one formed in each backward graph, or `none`
 * (inference only: no input gradients, and W may be repacked).
 */
export type TransposedCopy = "stored" | "on-the-fly" | "none";
export const TRANSPOSED_COPIES: readonly TransposedCopy[] = ["stored", "on-the-fly", "none"];

export interface MatrixOptions {
  dtype: BaseDtype;
  /** Default "stored". Under "on-the-fly", f32 is transposed as is and the other types through bf16. */
  transposed?: TransposedCopy;
  /**
   * Upload Q4_0 / Q4_K into CPU_REPACK where ggml repacks them (default true). Not under "on-the-fly":
   * a repacked W can only be multiplied, not dequantized into Wᵀ (nor gathered from).
   */
  repack?: boolean;
  /** Values per quantized block of rows at load (bounds the temporary float32 block). */
  blockValues?: number;
}

/** Rows r0 … r0+n−1 of a matrix as float32, row-major [n, cols]. */
export type RowReader = (r0: number, n: number) => Float32Array | Promise<Float32Array>;

/** One ggml tensor in its own buffer. */
interface Stored {
  ctx: Ptr;
  buffer: Ptr;
  tensor: Ptr;
  type: number;
  repacked: boolean;
  bytes: number;
}

const DEFAULT_BLOCK_VALUES = 1 << 22;

export class GgmlMatrix {
  readonly name: string;
  /** out: rows of W. */
  readonly rows: number;
  /** in: values per row of W. */
  readonly cols: number;
  readonly dtype: BaseDtype;
  readonly transposed: TransposedCopy;
  private readonly rt: GgmlRuntime;
  private w: Stored | undefined;
  private wt: Stored | undefined;

  private constructor(rt: GgmlRuntime, name: string, rows: number, cols: number, dtype: BaseDtype, transposed: TransposedCopy) {
    this.rt = rt;
    this.name = name;
    this.rows = rows;
    this.cols = cols;
    this.dtype = dtype;
    this.transposed = transposed;
  }

  /**
   * W [rows, cols] from float32 rows `read(r0, n)` (row-major [n, cols]), converted block by block with
   * `ggml_quantize_chunk`; nothing read is kept. Without a stored Wᵀ the rows stream through one block at
   * a time; a stored Wᵀ needs W's columns, so the whole matrix is read once (one matrix, never a model).
   */
  static async load(
    name: string,
    rows: number,
    cols: number,
    options: MatrixOptions,
    read: RowReader,
    rt: GgmlRuntime = requireRuntime(),
  ): Promise<GgmlMatrix> {
    const m = new GgmlMatrix(rt, name, rows, cols, options.dtype, options.transposed ?? "stored");
    const block = options.blockValues ?? DEFAULT_BLOCK_VALUES;
    try {
      const repack = options.repack !== false && m.transposed !== "on-the-fly";
      if (m.transposed === "stored") {
        const data = await read(0, rows);
        if (data.length !== rows * cols) throw new RangeError(`${name}: ${data.length} values, expected [${rows}, ${cols}]`);
        m.w = await upload(rt, storageType(options.dtype, cols), cols, rows, repack, block, (r0, n) =>
          data.subarray(r0 * cols, (r0 + n) * cols),
        );
        m.wt = await upload(rt, storageType(options.dtype, rows), rows, cols, repack, block, (c0, n) =>
          transposeColumns(data, rows, cols, c0, n),
        );
      } else {
        m.w = await upload(rt, storageType(options.dtype, cols), cols, rows, repack, block, read);
      }
    } catch (e) {
      m.dispose();
      throw e;
    }
    return m;
  }

  /** W from row-major float32 values [rows, cols] (see `load`). */
  static fromF32(
    name: string,
    data: Float32Array,
    rows: number,
    cols: number,
    options: MatrixOptions,
    rt?: GgmlRuntime,
  ): Promise<GgmlMatrix> {
    if (data.length !== rows * cols) throw new RangeError(`${name}: ${data.length} values, expected [${rows}, ${cols}]`);
    return GgmlMatrix.load(name, rows, cols, options, (r0, n) => data.subarray(r0 * cols, (r0 + n) * cols), rt);
  }

  /** Bytes held (W, plus Wᵀ when stored). */
  get bytes(): number {
    return (this.w?.bytes ?? 0) + (this.wt?.bytes ?? 0);
  }

  /** ggml type names of W and the stored Wᵀ: `Q4_K (repacked)`, for logs. */
  describe(): string {
    const one = (s: Stored | undefined) => (s ? `${ggmlTypeName(s.type)}${s.repacked ? " repacked" : ""}` : "—");
    return this.wt ? `${one(this.w)}, Wᵀ ${one(this.wt)}` : `${one(this.w)}, Wᵀ ${this.transposed}`;
  }

  /** y = x·Wᵀ for x [n, cols] → `read(y)` with y [n, rows] (a view valid only inside `read`). */
  forward<T>(x: Float32Array, n: number, read: (y: Float32Array) => T): T {
    const w = this.live().w!;
    return this.rt.compute(
      (b) => [b.g.mulMat(b.ctx, w.tensor, b.input(x, this.cols, n))],
      ([y]) => read(floatView(dataOf(this.rt, y), n * this.rows)),
    );
  }

  /** dx = dy·W for dy [n, rows] → `read(dx)` with dx [n, cols] (a view valid only inside `read`). */
  backward<T>(dy: Float32Array, n: number, read: (dx: Float32Array) => T): T {
    const { w, wt } = this.live();
    if (this.transposed === "none") throw new Error(`${this.name}: loaded for inference (no Wᵀ): no input gradients`);
    return this.rt.compute(
      (b) => {
        const { g, ctx } = b;
        let t = wt?.tensor;
        if (!t) {
          // Wᵀ [in rows of out] formed in the graph: f32 as is, the rest dequantized and held as bf16.
          const src = w!.type === GgmlType.F32 || w!.type === GgmlType.BF16 ? w!.tensor : g.cast(ctx, w!.tensor, GgmlType.F32);
          t = g.cast(ctx, g.transpose(ctx, src), w!.type === GgmlType.F32 ? GgmlType.F32 : GgmlType.BF16);
        }
        return [g.mulMat(ctx, t, b.input(dy, this.rows, n))];
      },
      ([dx]) => read(floatView(dataOf(this.rt, dx), n * this.cols)),
    );
  }

  /** The runtime whose graphs may use this weight. */
  get runtime(): GgmlRuntime {
    return this.rt;
  }

  /** The weight as ggml sees it in graphs (W [rows of cols]); for ops beyond forward/backward. */
  get tensor(): Ptr {
    return this.live().w!.tensor;
  }

  /** Whether W lies in ggml's repacked layout (then only mul_mat may read it). */
  get repacked(): boolean {
    return this.live().w!.repacked;
  }

  dispose(): void {
    for (const s of [this.w, this.wt]) {
      if (!s) continue;
      this.rt.libs.base.bufferFree(s.buffer);
      this.rt.libs.base.free(s.ctx);
    }
    this.w = undefined;
    this.wt = undefined;
  }

  private live(): { w: Stored; wt: Stored | undefined } {
    if (!this.w) throw new Error(`${this.name}: the ggml weight is disposed`);
    return { w: this.w, wt: this.wt };
  }
}

function dataOf(rt: GgmlRuntime, t: Ptr): Ptr {
  return rt.libs.base.getData(t);
}

function requireRuntime(): GgmlRuntime {
  const rt = ggmlRuntime();
  if ("reason" in rt) throw new Error(`native kernels unavailable: ${rt.reason}`);
  return rt;
}

/** Columns c0 … c0+n−1 of row-major [rows, cols] as row-major [n, rows]. */
function transposeColumns(data: Float32Array, rows: number, cols: number, c0: number, n: number): Float32Array {
  const out = new Float32Array(n * rows);
  for (let r = 0; r < rows; r++) {
    const src = r * cols + c0;
    for (let c = 0; c < n; c++) out[c * rows + r] = data[src + c]!;
  }
  return out;
}

/** Whether ggml would repack a [ne1 rows of ne0] tensor of `type` into CPU_REPACK on this machine. */
function repacks(rt: GgmlRuntime, type: number, ne1: number): boolean {
  return (
    rt.repackBufferType !== undefined &&
    process.arch === "x64" &&
    (type === GgmlType.Q4_0 || type === GgmlType.Q4_K) &&
    ne1 % 8 === 0 &&
    rt.libs.cpu.hasAvx2()
  );
}

/**
 * A [ne1 rows of ne0] tensor of `type` in its own buffer, filled from `rowsOf(r0, n)` (float32 rows)
 * block by block. Repacked tensors take their bytes in one call (ggml's repack buffer only accepts the
 * whole tensor), so their quantized bytes are staged first; others are written block by block.
 */
async function upload(
  rt: GgmlRuntime,
  type: number,
  ne0: number,
  ne1: number,
  allowRepack: boolean,
  blockValues: number,
  rowsOf: RowReader,
): Promise<Stored> {
  const g = rt.libs.base;
  const repacked = allowRepack && repacks(rt, type, ne1);
  const ctx = g.init({ mem_size: 2 * g.tensorOverhead(), mem_buffer: null, no_alloc: true });
  const tensor = g.newTensor2d(ctx, type, ne0, ne1);
  const buffer = g.allocCtxTensorsFromBuft(ctx, repacked ? rt.repackBufferType : g.cpuBufferType());
  if (!buffer) {
    g.free(ctx);
    throw new Error(`ggml could not allocate ${ggmlTypeName(type)} [${ne1}, ${ne0}]`);
  }
  const rowBytes = ggmlNBytes(type, ne0);
  const bytes = rowBytes * ne1;
  const stored: Stored = { ctx, buffer, tensor, type, repacked, bytes };
  try {
    const step = Math.max(1, Math.floor(blockValues / ne0));
    const staged = repacked ? new Uint8Array(bytes) : undefined;
    for (let r0 = 0; r0 < ne1; r0 += step) {
      const n = Math.min(step, ne1 - r0);
      const dst = staged ? staged.subarray(r0 * rowBytes, (r0 + n) * rowBytes) : new Uint8Array(n * rowBytes);
      const src = await rowsOf(r0, n);
      if (src.length !== n * ne0) throw new RangeError(`rows [${r0}, ${r0 + n}): ${src.length} values, expected ${n * ne0}`);
      ggmlQuantize(g, type, src, ne0, dst);
      if (!staged) g.tensorSet(tensor, dst, r0 * rowBytes, dst.length);
    }
    if (staged) g.tensorSet(tensor, staged, 0, bytes);
  } catch (e) {
    g.bufferFree(buffer);
    g.free(ctx);
    throw e;
  }
  return stored;
}
