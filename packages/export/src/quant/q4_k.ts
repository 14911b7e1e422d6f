// Q4_K: 256-value super-blocks, 8 sub-blocks of 32 with 6-bit scale and min, 4-bit levels
// (144 bytes); y = d·sc·q − dmin·m. Reference: spec/gguf.md §2.3–2.4; ggml-quants.c
// quantize_row_q4_K_ref / dequantize_row_q4_K.
import { f16BitsToF32 } from "@owntune/core";
import { kScratch, QK_K, quantizeKSuperBlock, scaleMinK4 } from "./k-common.js";

export const Q4_K_BYTES = 144;
const fr = Math.fround;

/** Quantizes `n` values of `x` from `xOff` (n a multiple of 256) into `out` at `outOff`. */
export function quantizeQ4_K(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  const L = new Uint8Array(QK_K);
  const scratch = kScratch();
  for (let b = 0; b < n / QK_K; b++) {
    const o = outOff + b * Q4_K_BYTES;
    quantizeKSuperBlock(x, xOff + b * QK_K, 15, -1, 20, out, o, L, scratch);
    // Chunk c of 64 values: byte 32c+l holds value 64c+l (low nibble) and 64c+32+l (high nibble).
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) out[o + 16 + 32 * c + l] = L[64 * c + l]! | (L[64 * c + 32 + l]! << 4);
    }
  }
}

/** Dequantizes `n` values (n a multiple of 256) from `q` at `qOff` into `out` at `outOff`. */
export function dequantizeQ4_K(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK_K; b++) {
    const o = qOff + b * Q4_K_BYTES;
    const d = f16BitsToF32(q[o]! | (q[o + 1]! << 8));
    const dmin = f16BitsToF32(q[o + 2]! | (q[o + 3]! << 8));
    const y = outOff + b * QK_K;
    for (let c = 0; c < 4; c++) {
      const [sc1, m1] = scaleMinK4(2 * c, q, o + 4);
      const [sc2, m2] = scaleMinK4(2 * c + 1, q, o + 4);
      const d1 = fr(d * sc1);
      const min1 = fr(dmin * m1);
      const d2 = fr(d * sc2);
      const min2 = fr(dmin * m2);
      for (let l = 0; l < 32; l++) {
        const byte = q[o + 16 + 32 * c + l]!;
        out[y + 64 * c + l] = fr(d1 * (byte & 0xf)) - min1;
        out[y + 64 * c + 32 + l] = fr(d2 * (byte >> 4)) - min2;
      }
    }
  }
}
