// Q8_0: blocks of 32 int8 with one fp16 scale (34 bytes). Reference: spec/gguf.md §2.1;
// ggml-quants.c quantize_row_q8_0_ref / dequantize_row_q8_0.
import { f16BitsToF32, f32ToF16Bits } from "@owntune/core";
import { roundAway } from "./ggml-rounding.js";

export const QK8_0 = 32;
export const Q8_0_BYTES = 34;
const fr = Math.fround;

/** Quantizes `n` values of `x` from `xOff` (n a multiple of 32) into `out` at `outOff`. */
export function quantizeQ8_0(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  for (let b = 0; b < n / QK8_0; b++) {
    const base = xOff + b * QK8_0;
    const o = outOff + b * Q8_0_BYTES;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const v = Math.abs(x[base + j]!);
      amax = amax > v ? amax : v;
    }
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < QK8_0; j++) out[o + 2 + j] = roundAway(fr(x[base + j]! * id)) & 0xff;
  }
}

/** Dequantizes `n` values (n a multiple of 32) from `q` at `qOff` into `out` at `outOff`. */
export function dequantizeQ8_0(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK8_0; b++) {
    const o = qOff + b * Q8_0_BYTES;
    const d = f16BitsToF32(q[o]! | (q[o + 1]! << 8));
    for (let j = 0; j < QK8_0; j++) out[outOff + b * QK8_0 + j] = d * ((q[o + 2 + j]! << 24) >> 24);
  }
}
