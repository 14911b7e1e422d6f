// Q6_K: 256-value super-blocks, 16 sub-blocks of 16 with int8 scales, 6-bit levels split into a
// 4-bit and a 2-bit plane (210 bytes); y = d·scale·(q − 32). Reference: spec/gguf.md §2.6;
// ggml-quants.c make_qx_quants (rmse_type 1), quantize_row_q6_K_ref / dequantize_row_q6_K.
import { f16BitsToF32, f32ToF16Bits } from "@owntune/core";
import { nearestInt } from "./ggml-rounding.js";
import { QK_K } from "./k-common.js";

export const Q6_K_BYTES = 210;
const GROUP_MAX_EPS = Math.fround(1e-15);
const fr = Math.fround;

/** make_qx_quants(16, 32, x, L, rmse_type=1, qw=NULL): levels L = l + 32 in 0..63, returns the scale. */
function makeQxQuants16(x: Float32Array, xOff: number, L: Uint8Array, lOff: number): number {
  const n = 16;
  const nmax = 32;
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xOff + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xOff + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lOff + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i]!;
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[lOff + i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i]!;
      const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        L[lOff + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * x[xOff + i]!))));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** Quantizes `n` values of `x` from `xOff` (n a multiple of 256) into `out` at `outOff`. */
export function quantizeQ6_K(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  const L = new Uint8Array(QK_K);
  const scales = new Float32Array(16);
  for (let b = 0; b < n / QK_K; b++) {
    const xb = xOff + b * QK_K;
    const o = outOff + b * Q6_K_BYTES;
    let maxScale = 0;
    let maxAbsScale = 0;
    for (let ib = 0; ib < 16; ib++) {
      const scale = makeQxQuants16(x, xb + 16 * ib, L, 16 * ib);
      scales[ib] = scale;
      if (Math.abs(scale) > maxAbsScale) {
        maxAbsScale = Math.abs(scale);
        maxScale = scale;
      }
    }
    if (maxAbsScale < GROUP_MAX_EPS) {
      out.fill(0, o, o + Q6_K_BYTES);
      continue;
    }
    const iscale = fr(-128 / maxScale);
    const dBits = f32ToF16Bits(fr(1 / iscale));
    out[o + 208] = dBits & 0xff;
    out[o + 209] = dBits >> 8;
    const d = f16BitsToF32(dBits);
    for (let ib = 0; ib < 16; ib++) {
      const sc = Math.min(127, nearestInt(fr(iscale * scales[ib]!)));
      out[o + 192 + ib] = sc & 0xff;
      const dd = fr(d * sc);
      if (!dd) continue;
      for (let i = 0; i < 16; i++) {
        L[16 * ib + i] = Math.max(-32, Math.min(31, nearestInt(fr(x[xb + 16 * ib + i]! / dd)))) + 32;
      }
    }
    // Half h (128 values): ql[64h+l] = q(e)|q(e+64)<<4, ql[64h+32+l] = q(e+32)|q(e+96)<<4, qh packs the top 2 bits.
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const e = 128 * h + l;
        const q1 = L[e]!;
        const q2 = L[e + 32]!;
        const q3 = L[e + 64]!;
        const q4 = L[e + 96]!;
        out[o + 64 * h + l] = (q1 & 0xf) | ((q3 & 0xf) << 4);
        out[o + 64 * h + 32 + l] = (q2 & 0xf) | ((q4 & 0xf) << 4);
        out[o + 128 + 32 * h + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
}

/** Dequantizes `n` values (n a multiple of 256) from `q` at `qOff` into `out` at `outOff`. */
export function dequantizeQ6_K(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK_K; b++) {
    const o = qOff + b * Q6_K_BYTES;
    const d = f16BitsToF32(q[o + 208]! | (q[o + 209]! << 8));
    const y = outOff + b * QK_K;
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const a = q[o + 64 * h + l]!;
        const bb = q[o + 64 * h + 32 + l]!;
        const H = q[o + 128 + 32 * h + l]!;
        const e = 128 * h + l;
        const sc = (k: number) => fr(d * ((q[o + 192 + (k >> 4)]! << 24) >> 24));
        out[y + e] = fr(sc(e) * (((a & 15) | ((H & 3) << 4)) - 32));
        out[y + e + 32] = fr(sc(e + 32) * (((bb & 15) | (((H >> 2) & 3) << 4)) - 32));
        out[y + e + 64] = fr(sc(e + 64) * (((a >> 4) | (((H >> 4) & 3) << 4)) - 32));
        out[y + e + 96] = fr(sc(e + 96) * (((bb >> 4) | (((H >> 6) & 3) << 4)) - 32));
      }
    }
  }
}
