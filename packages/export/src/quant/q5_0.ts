// Q5_0 and Q5_1: 32-value blocks with 5-bit levels (fifth bits in a u32 `qh`). llama.cpp falls back
// to them from Q4_K / Q5_K when a row is not a multiple of 256. Reference: spec/gguf.md §2.2, §2.8
// rule 9; ggml-quants.c quantize_row_q5_{0,1}_ref / dequantize_row_q5_{0,1}.
import { f16BitsToF32, f32ToF16Bits } from "@owntune/core";

export const QK5 = 32;
export const Q5_0_BYTES = 22;
export const Q5_1_BYTES = 24;
const fr = Math.fround;

function putU16(out: Uint8Array, o: number, v: number): void {
  out[o] = v & 0xff;
  out[o + 1] = v >> 8;
}

function putU32(out: Uint8Array, o: number, v: number): void {
  out[o] = v & 0xff;
  out[o + 1] = (v >>> 8) & 0xff;
  out[o + 2] = (v >>> 16) & 0xff;
  out[o + 3] = v >>> 24;
}

const getU32 = (q: Uint8Array, o: number) => (q[o]! | (q[o + 1]! << 8) | (q[o + 2]! << 16) | (q[o + 3]! << 24)) >>> 0;

/** Q5_0 (22 bytes: d, qh, qs[16]); y = d·(q − 16), d = max/−16 of the largest-|x| value. */
export function quantizeQ5_0(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  for (let b = 0; b < n / QK5; b++) {
    const base = xOff + b * QK5;
    const o = outOff + b * Q5_0_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK5; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = fr(max / -16);
    const id = d ? fr(1 / d) : 0;
    putU16(out, o, f32ToF16Bits(d));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(31, Math.trunc(fr(fr(x[base + j]! * id) + 16.5))) & 0xff;
      const q1 = Math.min(31, Math.trunc(fr(fr(x[base + 16 + j]! * id) + 16.5))) & 0xff;
      out[o + 6 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    putU32(out, o + 2, qh >>> 0);
  }
}

export function dequantizeQ5_0(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK5; b++) {
    const o = qOff + b * Q5_0_BYTES;
    const d = f16BitsToF32(q[o]! | (q[o + 1]! << 8));
    const qh = getU32(q, o + 2);
    for (let j = 0; j < 16; j++) {
      const byte = q[o + 6 + j]!;
      out[outOff + b * QK5 + j] = (((byte & 0xf) | (((qh >>> j) << 4) & 0x10)) - 16) * d;
      out[outOff + b * QK5 + 16 + j] = (((byte >> 4) | ((qh >>> (j + 12)) & 0x10)) - 16) * d;
    }
  }
}

/** Q5_1 (24 bytes: d, m, qh, qs[16]); y = d·q + m over the block's [min, max]. */
export function quantizeQ5_1(x: Float32Array, xOff: number, n: number, out: Uint8Array, outOff: number): void {
  for (let b = 0; b < n / QK5; b++) {
    const base = xOff + b * QK5;
    const o = outOff + b * Q5_1_BYTES;
    let min = 3.4028234663852886e38;
    let max = -3.4028234663852886e38;
    for (let j = 0; j < QK5; j++) {
      const v = x[base + j]!;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const d = fr(fr(max - min) / 31);
    const id = d ? fr(1 / d) : 0;
    putU16(out, o, f32ToF16Bits(d));
    putU16(out, o + 2, f32ToF16Bits(min));
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      const q0 = Math.trunc(fr(fr(fr(x[base + j]! - min) * id) + 0.5)) & 0xff;
      const q1 = Math.trunc(fr(fr(fr(x[base + 16 + j]! - min) * id) + 0.5)) & 0xff;
      out[o + 8 + j] = (q0 & 0xf) | ((q1 & 0xf) << 4);
      qh |= ((q0 & 0x10) >> 4) << j;
      qh |= ((q1 & 0x10) >> 4) << (j + 16);
    }
    putU32(out, o + 4, qh >>> 0);
  }
}

export function dequantizeQ5_1(q: Uint8Array, qOff: number, n: number, out: Float32Array, outOff: number): void {
  for (let b = 0; b < n / QK5; b++) {
    const o = qOff + b * Q5_1_BYTES;
    const d = f16BitsToF32(q[o]! | (q[o + 1]! << 8));
    const m = f16BitsToF32(q[o + 2]! | (q[o + 3]! << 8));
    const qh = getU32(q, o + 4);
    for (let j = 0; j < 16; j++) {
      const byte = q[o + 8 + j]!;
      out[outOff + b * QK5 + j] = fr(((byte & 0xf) | (((qh >>> j) << 4) & 0x10)) * d) + m;
      out[outOff + b * QK5 + 16 + j] = fr(((byte >> 4) | ((qh >>> (j + 12)) & 0x10)) * d) + m;
    }
  }
}
