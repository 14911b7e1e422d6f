// Which code converts float32 rows to ggml bytes at export: ggml's own `ggml_quantize_chunk` (the
// libggml-base node-llama-cpp ships) when it loads, else our JavaScript quantizers (quantize.ts), which
// give the same bytes (quantize.test.ts) at a fraction of the speed for the K-quants. OWNTUNE_KERNELS=tfjs
// keeps everything in JavaScript. Each thread (main or quantize worker) decides for itself, the same way.
import { GGML_QUANTIZE_TYPES, ggmlQuantize, loadGgmlBase, type GgmlBase } from "@owntune/ggml";
import { quantizeTensor } from "./quantize.js";

export interface QuantizerInfo {
  name: "ggml" | "js";
  /** Why: `libggml-base (node-llama-cpp)`, `forced (OWNTUNE_KERNELS=tfjs)`, or why ggml did not load. */
  reason: string;
}

let chosen: { info: QuantizerInfo; base?: GgmlBase } | undefined;

function choose(): { info: QuantizerInfo; base?: GgmlBase } {
  if (chosen) return chosen;
  if (process.env.OWNTUNE_KERNELS?.trim().toLowerCase() === "tfjs")
    return (chosen = { info: { name: "js", reason: "forced (OWNTUNE_KERNELS=tfjs)" } });
  const base = loadGgmlBase();
  if ("reason" in base) return (chosen = { info: { name: "js", reason: `ggml unavailable: ${base.reason}` } });
  return (chosen = { info: { name: "ggml", reason: base.path }, base });
}

/** The quantizer this thread uses. */
export function quantizerInfo(): QuantizerInfo {
  return choose().info;
}

/** `quantizeTensor(type, data, rowLength)`'s bytes, through ggml when it loads (see the file header). */
export function quantizeRows(type: number, data: Float32Array, rowLength: number): Uint8Array {
  const { base } = choose();
  return base && GGML_QUANTIZE_TYPES.has(type) ? ggmlQuantize(base, type, data, rowLength) : quantizeTensor(type, data, rowLength);
}

/** Forgets the choice (tests that change OWNTUNE_GGML_DIR or OWNTUNE_KERNELS). */
export function resetQuantizerChoice(): void {
  chosen = undefined;
}
