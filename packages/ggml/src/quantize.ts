// Float32 rows → ggml bytes through ggml's own `ggml_quantize_chunk` (libggml-base; no imatrix, so the
// reference quantizers: ggml/src/ggml-quants.c). Inputs are checked here first: ggml answers a bad size
// with GGML_ASSERT, which aborts the whole process.
import type { GgmlBase } from "./library.js";
import { GgmlType, ggmlNBytes, ggmlTypeInfo, ggmlTypeName } from "./types.js";

/** Types `ggmlQuantize` converts to (those the exporter writes). */
export const GGML_QUANTIZE_TYPES: ReadonlySet<number> = new Set([
  GgmlType.F32,
  GgmlType.F16,
  GgmlType.BF16,
  GgmlType.Q8_0,
  GgmlType.Q4_0,
  GgmlType.Q5_0,
  GgmlType.Q5_1,
  GgmlType.Q4_K,
  GgmlType.Q5_K,
  GgmlType.Q6_K,
]);

/** `data` (row-major, `rowLength` values per row) as `type`'s bytes, each row on its own, into `out` or a new array. */
export function ggmlQuantize(base: GgmlBase, type: number, data: Float32Array, rowLength: number, out?: Uint8Array): Uint8Array {
  const info = ggmlTypeInfo(type);
  if (!info || !GGML_QUANTIZE_TYPES.has(type)) throw new RangeError(`no quantizer for ${ggmlTypeName(type)}`);
  if (!Number.isInteger(rowLength) || rowLength <= 0 || rowLength % info.block !== 0 || data.length % rowLength !== 0) {
    throw new RangeError(
      `${ggmlTypeName(type)} needs rows of a multiple of ${info.block} values, got ${rowLength} (${data.length} values)`,
    );
  }
  const rows = data.length / rowLength;
  const bytes = rows * ggmlNBytes(type, rowLength);
  const dst = out ?? new Uint8Array(bytes);
  if (dst.length < bytes) throw new RangeError(`output of ${dst.length} bytes, ${bytes} needed`);
  if (rows === 0) return dst;
  const written = base.quantizeChunk(type, data, dst, 0, rows, rowLength, null);
  if (Number(written) !== bytes) throw new Error(`ggml_quantize_chunk wrote ${written} bytes, expected ${bytes}`);
  return dst;
}
