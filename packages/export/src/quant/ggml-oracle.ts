// Test-only: ggml's own quantizers and dequantizers, called in the prebuilt libggml-base.so that
// node-llama-cpp ships, through the koffi FFI. The oracle our quant bytes must equal. Not exported.
import { join } from "node:path";
import { nodeLlamaCppBinDir } from "@owntune/ggml";
import koffi from "koffi";

/** Path of the libggml-base.so that node-llama-cpp 3.21.1 ships for this platform. */
export function ggmlBaseLibraryPath(): string {
  const bins = nodeLlamaCppBinDir();
  if ("reason" in bins) throw new Error(bins.reason);
  return join(bins.dir, "libggml-base.so");
}

export interface GgmlOracle {
  /** ggml_quantize_chunk(type, src, dst, 0, nrows, nPerRow, NULL): the reference bytes. */
  quantize(type: number, src: Float32Array, nPerRow: number): Uint8Array;
  /** ggml's dequantize_row_<type> (or fp16/bf16 → f32 row converters). */
  dequantize(type: number, bytes: Uint8Array, n: number): Float32Array;
  /** float32 → 16-bit bits as ggml_quantize_chunk makes F16 and BF16 rows (ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref). */
  toHalf(type: "f16" | "bf16", x: Float32Array): Uint16Array;
}

let cached: GgmlOracle | undefined;

export function loadGgmlOracle(): GgmlOracle {
  if (cached) return cached;
  const lib = koffi.load(ggmlBaseLibraryPath());
  const rowSize = lib.func("size_t ggml_row_size(int type, int64_t ne)");
  const quantizeChunk = lib.func(
    "size_t ggml_quantize_chunk(int type, const float *src, _Out_ uint8_t *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)",
  );
  const deq = (name: string) => lib.func(`void ${name}(const uint8_t *x, _Out_ float *y, int64_t k)`);
  const dequantizers: Record<number, ReturnType<typeof deq>> = {
    1: deq("ggml_fp16_to_fp32_row"),
    30: deq("ggml_bf16_to_fp32_row"),
    8: deq("dequantize_row_q8_0"),
    2: deq("dequantize_row_q4_0"),
    6: deq("dequantize_row_q5_0"),
    7: deq("dequantize_row_q5_1"),
    12: deq("dequantize_row_q4_K"),
    13: deq("dequantize_row_q5_K"),
    14: deq("dequantize_row_q6_K"),
  };
  const toHalf = {
    f16: lib.func("void ggml_fp32_to_fp16_row(const float *x, _Out_ uint16_t *y, int64_t n)"),
    bf16: lib.func("void ggml_fp32_to_bf16_row_ref(const float *x, _Out_ uint16_t *y, int64_t n)"),
  };
  cached = {
    quantize(type, src, nPerRow) {
      const rows = src.length / nPerRow;
      const dst = new Uint8Array(Number(rowSize(type, nPerRow)) * rows);
      const written = Number(quantizeChunk(type, src, dst, 0, rows, nPerRow, null));
      if (written !== dst.length) throw new Error(`ggml_quantize_chunk wrote ${written} bytes, expected ${dst.length}`);
      return dst;
    },
    dequantize(type, bytes, n) {
      const f = dequantizers[type];
      if (!f) throw new Error(`no ggml dequantizer bound for type ${type}`);
      const out = new Float32Array(n);
      f(bytes, out, n);
      return out;
    },
    toHalf(type, x) {
      const out = new Uint16Array(x.length);
      toHalf[type](x, out, x.length);
      return out;
    },
  };
  return cached;
}
