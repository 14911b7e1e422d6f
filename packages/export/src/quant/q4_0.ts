// Q4_0: blocks of 32 4-bit levels with one fp16 scale (18 bytes); y = d·(q − 8). Reference:
// spec/gguf.md §2.2; ggml-quants.c quantize_row_q4_0_ref / dequantize_row_q4_0.
import { f16BitsToF32, f32ToF16Bits } from "@owntune/core";

export const QK4_0 = 32;
export const Q4_0_BYTES = 18;
const fr = Math.fround;

/** Quantizes `n` values of `x` from `xOff` (n a multiple of 32) into `out` at `outOff`. */
export function quantizeQ4_0(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  for (let b = 0; b < n / QK4_0; b++) {
    const base = xOff + b * QK4_0;
    const o = outOff + b * Q4_0_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK4_0; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const h = f32ToF16Bits(d);
    out[o] = h & 0xff;
    out[o + 1] = h >> 8;
    for (let j = 0; j < QK4_0 / 2; j++) {
      // (int8_t)(x·id + 8.5f): float32 add, then truncation toward zero.
      const q0 = Math.min(15, Math.trunc(fr(fr(x[base + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(fr(fr(x[base + 16 + j]! * id) + 8.5)));
      out[o + 2 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
    }
  }
}

/** Dequantizes `n` values (n a multiple of 32) from `q` at `qOff` into `out` at `outOff`. */
export function dequantizeQ4_0(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK4_0; b++) {
    const o = qOff + b * Q4_0_BYTES;
    const d = f16BitsToF32(q[o]! | (q[o + 1]! << 8));
    const y = outOff + b * QK4_0;
    for (let j = 0; j < 16; j++) {
      const byte = q[o + 2 + j]!;
      out[y + j] = ((byte & 0xf) - 8) * d;
      out[y + 16 + j] = ((byte >> 4) - 8) * d;
    }
  }
}
