// Q5_K: as Q4_K with 5-bit levels, the fifth bit of each in a 32-byte qh plane (176 bytes).
// Reference: spec/gguf.md §2.3, §2.5; ggml-quants.c quantize_row_q5_K_ref / dequantize_row_q5_K.
import { f16BitsToF32 } from "@owntune/core";
import { kScratch, QK_K, quantizeKSuperBlock, scaleMinK4 } from "./k-common.js";

export const Q5_K_BYTES = 176;
const fr = Math.fround;

/** Quantizes `n` values of `x` from `xOff` (n a multiple of 256) into `out` at `outOff`. */
export function quantizeQ5_K(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  const L = new Uint8Array(QK_K);
  const scratch = kScratch();
  for (let b = 0; b < n / QK_K; b++) {
    const o = outOff + b * Q5_K_BYTES;
    quantizeKSuperBlock(x, xOff + b * QK_K, 31, -0.5, 15, out, o, L, scratch);
    const qh = o + 16;
    const ql = o + 48;
    for (let j = 0; j < 32; j++) out[qh + j] = 0;
    // Chunk c: value 64c+l → low nibble of ql[32c+l], bit 2c of qh[l]; 64c+32+l → high nibble, bit 2c+1.
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        let l1 = L[64 * c + l]!;
        let l2 = L[64 * c + 32 + l]!;
        if (l1 > 15) {
          l1 -= 16;
          out[qh + l]! |= 1 << (2 * c);
        }
        if (l2 > 15) {
          l2 -= 16;
          out[qh + l]! |= 2 << (2 * c);
        }
        out[ql + 32 * c + l] = l1 | (l2 << 4);
      }
    }
  }
}

/** Dequantizes `n` values (n a multiple of 256) from `q` at `qOff` into `out` at `outOff`. */
export function dequantizeQ5_K(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK_K; b++) {
    const o = qOff + b * Q5_K_BYTES;
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
        const byte = q[o + 48 + 32 * c + l]!;
        const h = q[o + 16 + l]!;
        out[y + 64 * c + l] = fr(d1 * ((byte & 0xf) + (h & (1 << (2 * c)) ? 16 : 0))) - min1;
        out[y + 64 * c + 32 + l] = fr(d2 * ((byte >> 4) + (h & (2 << (2 * c)) ? 16 : 0))) - min2;
      }
    }
  }
}
