// One entry point per direction for every type the exporter writes: float32 → ggml bytes, and
// back. Each row is quantized on its own (blocks never span rows), as ggml_quantize_chunk does.
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits } from "@owntune/core";
import { GgmlType, ggmlNBytes, ggmlTypeInfo, ggmlTypeName } from "./ggml-types.js";
import { dequantizeQ4_0, quantizeQ4_0 } from "./q4_0.js";
import { dequantizeQ4_K, quantizeQ4_K } from "./q4_k.js";
import { dequantizeQ5_0, dequantizeQ5_1, quantizeQ5_0, quantizeQ5_1 } from "./q5_0.js";
import { dequantizeQ5_K, quantizeQ5_K } from "./q5_k.js";
import { dequantizeQ6_K, quantizeQ6_K } from "./q6_k.js";
import { dequantizeQ8_0, quantizeQ8_0 } from "./q8_0.js";

type Quantizer = (x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number) => void;
type Dequantizer = (q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number) => void;

const QUANTIZERS: Record<number, Quantizer> = {
  [GgmlType.F32]: (x, xOff, n, out, outOff) => {
    new Uint8Array(out.buffer, out.byteOffset + outOff, 4 * n).set(new Uint8Array(x.buffer, x.byteOffset + 4 * xOff, 4 * n));
  },
  [GgmlType.F16]: (x, xOff, n, out, outOff) => {
    for (let i = 0; i < n; i++) {
      const h = f32ToF16Bits(x[xOff + i]!);
      out[outOff + 2 * i] = h & 0xff;
      out[outOff + 2 * i + 1] = h >> 8;
    }
  },
  [GgmlType.BF16]: (x, xOff, n, out, outOff) => {
    for (let i = 0; i < n; i++) {
      const h = f32ToBf16Bits(x[xOff + i]!);
      out[outOff + 2 * i] = h & 0xff;
      out[outOff + 2 * i + 1] = h >> 8;
    }
  },
  [GgmlType.Q8_0]: quantizeQ8_0,
  [GgmlType.Q4_0]: quantizeQ4_0,
  [GgmlType.Q5_0]: quantizeQ5_0,
  [GgmlType.Q5_1]: quantizeQ5_1,
  [GgmlType.Q4_K]: quantizeQ4_K,
  [GgmlType.Q5_K]: quantizeQ5_K,
  [GgmlType.Q6_K]: quantizeQ6_K,
};

const DEQUANTIZERS: Record<number, Dequantizer> = {
  [GgmlType.F32]: (q, qOff, n, out, outOff) => {
    const dv = new DataView(q.buffer, q.byteOffset + qOff, 4 * n);
    for (let i = 0; i < n; i++) out[outOff + i] = dv.getFloat32(4 * i, true);
  },
  [GgmlType.F16]: (q, qOff, n, out, outOff) => {
    for (let i = 0; i < n; i++) out[outOff + i] = f16BitsToF32(q[qOff + 2 * i]! | (q[qOff + 2 * i + 1]! << 8));
  },
  [GgmlType.BF16]: (q, qOff, n, out, outOff) => {
    for (let i = 0; i < n; i++) out[outOff + i] = bf16BitsToF32(q[qOff + 2 * i]! | (q[qOff + 2 * i + 1]! << 8));
  },
  [GgmlType.Q8_0]: dequantizeQ8_0,
  [GgmlType.Q4_0]: dequantizeQ4_0,
  [GgmlType.Q5_0]: dequantizeQ5_0,
  [GgmlType.Q5_1]: dequantizeQ5_1,
  [GgmlType.Q4_K]: dequantizeQ4_K,
  [GgmlType.Q5_K]: dequantizeQ5_K,
  [GgmlType.Q6_K]: dequantizeQ6_K,
};

/** Types we can write (and read back). */
export const WRITABLE_TYPES: readonly number[] = Object.keys(QUANTIZERS).map(Number);

/**
 * Converts a row-major float32 tensor to `type`'s bytes, `rowLength` values per row (ggml ne[0]),
 * which must be a multiple of the type's block size. Bytes are those of ggml's reference quantizers.
 */
export function quantizeTensor(type: number, data: Float32Array, rowLength: number, out?: Uint8Array): Uint8Array {
  const q = QUANTIZERS[type];
  const info = ggmlTypeInfo(type);
  if (!q || !info) throw new RangeError(`no quantizer for ${ggmlTypeName(type)}`);
  if (rowLength % info.block !== 0 || data.length % rowLength !== 0) {
    throw new RangeError(
      `${ggmlTypeName(type)} needs rows of a multiple of ${info.block} values, got ${rowLength} (${data.length} values)`,
    );
  }
  const rows = data.length / rowLength;
  const rowBytes = ggmlNBytes(type, rowLength);
  const dst = out ?? new Uint8Array(rows * rowBytes);
  for (let r = 0; r < rows; r++) q(data, r * rowLength, rowLength, dst, r * rowBytes);
  return dst;
}

/** True when dequantizeTensor can decode `type`. */
export function canDequantize(type: number): boolean {
  return DEQUANTIZERS[type] !== undefined;
}

/** Decodes `n` values of `type` from `bytes` (as ggml's dequantize_row_* / to_float do). */
export function dequantizeTensor(type: number, bytes: Uint8Array, n: number): Float32Array {
  const d = DEQUANTIZERS[type];
  if (!d) throw new RangeError(`no dequantizer for ${ggmlTypeName(type)}`);
  const out = new Float32Array(n);
  d(bytes, 0, n, out, 0);
  return out;
}
