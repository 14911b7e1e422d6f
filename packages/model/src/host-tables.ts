// Weights kept off the backend in compact form and widened to float32 only where they are used
// (design.md "Backends and memory"): row tables held as bf16 or f32 chunks (no typed array near V8's
// 2³²-element limit), row tables read straight from the checkpoint file with positioned reads, and
// the upload of widened values into a backend tensor without an intermediate copy on wasm.
import { closeSync, openSync, readSync } from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { bf16ToF32, f16ToF32, f32ToBf16 } from "@owntune/core";

/** How a host table stores its values: float32, or bfloat16 bits (half the bytes; exact for bf16 checkpoints). */
export type HostDtype = "f32" | "bf16";

/**
 * Bytes per chunk of a host table: 1 GiB keeps each typed array far below V8's 2³² elements and each
 * allocation one the OS grants easily (E2B's per-layer table, 4.7 GB as bf16, is five chunks).
 */
export const HOST_CHUNK_BYTES = 2 ** 30;
/** Float32 bytes read per block while filling a host table (bounded transient at load). */
const READ_BLOCK_BYTES = 64 * 2 ** 20;

/** Values of one host chunk. */
export type HostValues = Float32Array | Uint16Array;

function hostValues(dtype: HostDtype, n: number): HostValues {
  return dtype === "bf16" ? new Uint16Array(n) : new Float32Array(n);
}

/** Stores float32 `src` into `dst` at `offset` (rounded to nearest even when `dst` holds bf16). */
function storeValues(dst: HostValues, offset: number, src: Float32Array): void {
  if (dst instanceof Float32Array) dst.set(src, offset);
  else f32ToBf16(src, dst.subarray(offset, offset + src.length));
}

/** Widens `src[start, start+n)` into `dst` (float32) at `dstOffset`. */
function widenValues(src: HostValues, start: number, n: number, dst: Float32Array, dstOffset = 0): void {
  if (src instanceof Float32Array) dst.set(src.subarray(start, start + n), dstOffset);
  else bf16ToF32(src.subarray(start, start + n), dst.subarray(dstOffset, dstOffset + n));
}

/**
 * A float32 tensor of `shape` whose values `fill` writes. On wasm it writes straight into the tensor's
 * heap memory (one pass: no JS array then a copy); elsewhere into a fresh array the tensor adopts.
 */
export function filledTensor<R extends tf.Rank>(shape: number[], fill: (dst: Float32Array) => void): tf.Tensor<R> {
  const backend = tf.backend() as unknown as {
    makeOutput?: (shape: number[], dtype: "float32") => tf.TensorInfo;
    typedArrayFromHeap?: (info: tf.TensorInfo) => Float32Array;
  };
  if (tf.getBackend() === "wasm" && typeof backend.makeOutput === "function" && typeof backend.typedArrayFromHeap === "function") {
    const info = backend.makeOutput(shape, "float32"); // uninitialized heap memory
    fill(backend.typedArrayFromHeap(info)); // (a view taken after the allocation: valid until the heap grows again)
    return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
  }
  const values = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fill(values);
  return tf.tensor<tf.Rank>(values, shape) as tf.Tensor<R>;
}

/**
 * A table read by rows (per-layer embeddings): `gather` writes rows `ids` (each `width` values,
 * times `scale`) into `out` back to back. Synchronous, so the forward pass can call it.
 */
export interface RowTable {
  readonly rows: number;
  readonly width: number;
  /** Bytes held in memory. */
  readonly bytes: number;
  /** Where the rows come from, for logs: `memory (bf16)`, `file model.safetensors`. */
  readonly where: string;
  gather(ids: ArrayLike<number>, out: Float32Array, scale?: number): void;
  dispose(): void;
}

function checkRow(table: RowTable, id: number): void {
  if (!Number.isInteger(id) || id < 0 || id >= table.rows)
    throw new RangeError(`token id ${id} outside the per-layer embedding table (${table.rows} rows)`);
}

/** A [rows, width] row-major table in memory, in chunks of whole rows of at most `chunkBytes`. */
export class ChunkedRows implements RowTable {
  readonly rows: number;
  readonly width: number;
  readonly dtype: HostDtype;
  readonly rowsPerChunk: number;
  private chunks: HostValues[];

  constructor(rows: number, width: number, dtype: HostDtype, chunkBytes = HOST_CHUNK_BYTES) {
    this.rows = rows;
    this.width = width;
    this.dtype = dtype;
    const rowBytes = width * (dtype === "bf16" ? 2 : 4);
    this.rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(chunkBytes / Math.max(1, rowBytes))));
    this.chunks = [];
    for (let r0 = 0; r0 < rows; r0 += this.rowsPerChunk)
      this.chunks.push(hostValues(dtype, Math.min(this.rowsPerChunk, rows - r0) * width));
  }

  /**
   * Fills a table from `read(start, count)` (float32 rows, e.g. a TensorSource's `readRows`), at most
   * `blockRows` rows per read so the float32 transient stays bounded.
   */
  static async load(
    read: (start: number, count: number) => Promise<Float32Array>,
    rows: number,
    width: number,
    dtype: HostDtype,
    options: { chunkBytes?: number; blockRows?: number } = {},
  ): Promise<ChunkedRows> {
    const t = new ChunkedRows(rows, width, dtype, options.chunkBytes);
    const block = Math.max(1, Math.min(t.rowsPerChunk, options.blockRows ?? Math.floor(READ_BLOCK_BYTES / (4 * Math.max(1, width)))));
    for (let r0 = 0; r0 < rows;) {
      // A block never straddles two chunks.
      const n = Math.min(block, rows - r0, t.rowsPerChunk - (r0 % t.rowsPerChunk));
      t.setRows(r0, await read(r0, n));
      r0 += n;
    }
    return t;
  }

  get chunkCount(): number {
    return this.chunks.length;
  }

  get bytes(): number {
    return this.rows * this.width * (this.dtype === "bf16" ? 2 : 4);
  }

  get where(): string {
    return `memory (${this.dtype}, ${this.chunks.length} chunk${this.chunks.length === 1 ? "" : "s"})`;
  }

  /** Sets rows [start, start + values.length / width), which may span chunks. */
  setRows(start: number, values: Float32Array): void {
    const count = values.length / this.width;
    if (!Number.isInteger(count) || start < 0 || start + count > this.rows)
      throw new RangeError(`rows [${start}, ${start + count}) outside [0, ${this.rows})`);
    for (let done = 0; done < count;) {
      const r = start + done;
      const c = Math.floor(r / this.rowsPerChunk);
      const local = r - c * this.rowsPerChunk;
      const n = Math.min(count - done, this.rowsPerChunk - local);
      storeValues(this.chunks[c]!, local * this.width, values.subarray(done * this.width, (done + n) * this.width));
      done += n;
    }
  }

  /** Widens chunk `c` (rows c·rowsPerChunk …, row-major) into `dst`. */
  widenChunk(c: number, dst: Float32Array): void {
    const src = this.chunks[c]!;
    widenValues(src, 0, src.length, dst);
  }

  gather(ids: ArrayLike<number>, out: Float32Array, scale = 1): void {
    const w = this.width;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      checkRow(this, id);
      const c = Math.floor(id / this.rowsPerChunk);
      widenValues(this.chunks[c]!, (id - c * this.rowsPerChunk) * w, w, out, i * w);
      if (scale !== 1) for (let k = i * w; k < (i + 1) * w; k++) out[k] = out[k]! * scale;
    }
  }

  dispose(): void {
    this.chunks = [];
  }
}

/**
 * Where a 2-D tensor's rows lie in a file: row r is the bytes at `offset + r·rowBytes`, plain F32 / F16 /
 * BF16 values (safetensors, float GGUF tensors), or `rowBytes` bytes that `decode` turns into `width`
 * floats (a quantized GGUF row).
 */
export type TensorFileRows = { path: string; offset: number; rows: number; width: number } & (
  { dtype: "F32" | "F16" | "BF16" } | { dtype: "encoded"; rowBytes: number; decode: (bytes: Uint8Array, out: Float32Array) => void }
);

const BYTES = { F32: 4, F16: 2, BF16: 2 } as const;

/**
 * Rows gathered from the checkpoint file by positioned reads on a descriptor of its own (so it outlives
 * the checkpoint object): nothing of the table is held, and the OS page cache keeps hot rows. One
 * E2B row is 8,960 bf16 values (17.5 KiB), a read of a few microseconds when cached.
 */
export class FileRows implements RowTable {
  readonly rows: number;
  readonly width: number;
  readonly bytes = 0;
  readonly where: string;
  private fd: number | undefined;
  private readonly range: TensorFileRows;
  private readonly scratch: Uint8Array;

  constructor(range: TensorFileRows) {
    this.range = range;
    this.rows = range.rows;
    this.width = range.width;
    this.where = `file ${range.path}`;
    this.fd = openSync(range.path, "r");
    this.scratch = new Uint8Array(range.dtype === "encoded" ? range.rowBytes : range.width * BYTES[range.dtype]);
  }

  gather(ids: ArrayLike<number>, out: Float32Array, scale = 1): void {
    if (this.fd === undefined) throw new Error(`${this.range.path}: row table is closed`);
    const range = this.range;
    const { width: w, offset } = range;
    const rowBytes = this.scratch.byteLength;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      checkRow(this, id);
      for (let done = 0; done < rowBytes;) {
        const n = readSync(this.fd, this.scratch, done, rowBytes - done, offset + id * rowBytes + done);
        if (n === 0) throw new Error(`${this.range.path}: file ends inside row ${id} of the per-layer embedding table`);
        done += n;
      }
      const dst = out.subarray(i * w, (i + 1) * w);
      if (range.dtype === "encoded") range.decode(this.scratch, dst);
      else if (range.dtype === "F32") dst.set(new Float32Array(this.scratch.buffer, 0, w));
      else if (range.dtype === "BF16") bf16ToF32(new Uint16Array(this.scratch.buffer, 0, w), dst);
      else f16ToF32(new Uint16Array(this.scratch.buffer, 0, w), dst);
      if (scale !== 1) for (let k = 0; k < w; k++) dst[k] = dst[k]! * scale;
    }
  }

  dispose(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
