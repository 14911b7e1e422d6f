// What Q4_K and Q5_K share: the weighted least-squares fit of (scale, min) per 32-value sub-block
// (`make_qkx2_quants`) and the 12-byte packing of eight 6-bit scales and mins. Reference:
// spec/gguf.md §2.3; ggml-quants.c make_qkx2_quants, get_scale_min_k4, quantize_row_q4_K_ref.
import { f16BitsToF32, f32ToF16Bits } from "@owntune/core";
import { nearestInt } from "./ggml-rounding.js";

export const QK_K = 256;
const fr = Math.fround;

/**
 * `make_qkx2_quants(n, nmax, x, w, L, &the_min, Laux, rmin, rdelta, nstep, use_mad=false)`:
 * fits x ≈ scale·L + min (min ≤ 0) by weighted least squares over a small grid of inverse scales.
 * Writes the levels to `L[lOff..]`, returns [scale, −min]. Float32 arithmetic, in ggml's order.
 */
export function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xOff: number,
  w: Float32Array,
  L: Uint8Array,
  lOff: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
): [scale: number, theMin: number] {
  let min = x[xOff]!;
  let max = x[xOff]!;
  let sumW = w[0]!;
  let sumX = fr(sumW * x[xOff]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xOff + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = fr(sumW + w[i]!);
    sumX = fr(sumX + fr(w[i]! * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lOff + i] = 0;
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let best = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xOff + i]!;
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[lOff + i] = l;
    const diff = fr(fr(fr(scale * l) + min) - xi);
    best = fr(best + fr(w[i]! * fr(diff * diff)));
  }
  for (let is = 0; is <= nstep; is++) {
    // `min` may have moved to an accepted fit's min: ggml re-reads it here and below.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xOff + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const wl = fr(w[i]! * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        const diff = fr(fr(fr(thisScale * Laux[i]!) + thisMin) - x[xOff + i]!);
        err = fr(err + fr(w[i]! * fr(diff * diff)));
      }
      if (err < best) {
        for (let i = 0; i < n; i++) L[lOff + i] = Laux[i]!;
        best = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

/** Unpacks sub-block `j`'s 6-bit (scale, min) from the 12 packed bytes at `s[o..]` (get_scale_min_k4). */
export function scaleMinK4(j: number, s: Uint8Array, o: number): [sc: number, m: number] {
  if (j < 4) return [s[o + j]! & 63, s[o + j + 4]! & 63];
  return [(s[o + j + 4]! & 0xf) | ((s[o + j - 4]! >> 6) << 4), (s[o + j + 4]! >> 4) | ((s[o + j]! >> 6) << 4)];
}

/**
 * Quantizes one 256-value super-block to 8 sub-blocks of levels 0..nmax with 6-bit scales/mins:
 * fills L[0..255], writes d, dmin (fp16) at out[o], out[o+2] and the 12 scale bytes at out[o+4].
 * The shared front half of quantize_row_q4_K_ref and quantize_row_q5_K_ref.
 */
export function quantizeKSuperBlock(
  x: Float32Array,
  xOff: number,
  nmax: number,
  rmin: number,
  nstep: number,
  out: Uint8Array,
  o: number,
  L: Uint8Array,
  scratch: { Laux: Uint8Array; weights: Float32Array; scales: Float32Array; mins: Float32Array },
): void {
  const { Laux, weights, scales, mins } = scratch;
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    const base = xOff + 32 * j;
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[base + l]! * x[base + l]!));
    const av = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(av + Math.abs(x[base + l]!));
    const [scale, theMin] = makeQkx2Quants(32, nmax, x, base, weights, L, 32 * j, Laux, rmin, fr(0.1), nstep);
    scales[j] = scale;
    mins[j] = theMin;
    if (scale > maxScale) maxScale = scale;
    if (theMin > maxMin) maxMin = theMin;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const s = o + 4;
  for (let j = 0; j < 12; j++) out[s + j] = 0;
  for (let j = 0; j < 8; j++) {
    // `uint8_t ls = nearest_int(...)` wraps mod 256 before the MIN(63, ·).
    const ls = Math.min(63, nearestInt(fr(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(fr(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      out[s + j] = ls;
      out[s + j + 4] = lm;
    } else {
      out[s + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[s + j - 4]! |= (ls >> 4) << 6;
      out[s + j]! |= (lm >> 4) << 6;
    }
  }
  const dBits = f32ToF16Bits(fr(maxScale / 63));
  const dminBits = f32ToF16Bits(fr(maxMin / 63));
  out[o] = dBits & 0xff;
  out[o + 1] = dBits >> 8;
  out[o + 2] = dminBits & 0xff;
  out[o + 3] = dminBits >> 8;
  // Re-derive the levels from the stored (fp16, 6-bit) scales; a zero scale keeps the fit's levels.
  const d = f16BitsToF32(dBits);
  const dmin = f16BitsToF32(dminBits);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(j, out, s);
    const dj = fr(d * sc);
    if (!dj) continue;
    const dm = fr(dmin * m);
    for (let i = 0; i < 32; i++) {
      L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(x[xOff + 32 * j + i]! + dm) / dj))));
    }
  }
}

/** Scratch buffers for quantizeKSuperBlock, allocated once per row loop. */
export function kScratch() {
  return { Laux: new Uint8Array(32), weights: new Float32Array(32), scales: new Float32Array(8), mins: new Float32Array(8) };
}
