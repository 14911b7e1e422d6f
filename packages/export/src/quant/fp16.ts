// Scalar number formats ggml uses, bit-exact: IEEE fp16 and bf16 conversions, and the two rounding
// helpers of ggml-quants.c. Reference: spec/gguf.md §2.0; ggml-impl.h (fp32↔fp16/bf16), ggml-quants.c.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The IEEE float32 bit pattern of `x` (rounded to float32 first). */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The float32 whose bit pattern is `bits`. */
export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

const fr = Math.fround;
const SCALE_TO_INF = 2 ** 112;
const SCALE_TO_ZERO = 2 ** -110;

/**
 * float32 → fp16 bits, round-to-nearest-even, overflow → ±inf, NaN → sign|0x7E00: ggml's
 * `ggml_compute_fp32_to_fp16` step by step (the magic-number form, exact in float32).
 */
export function fp32ToFp16(x: number): number {
  const w = f32Bits(x);
  const shl1 = (w << 1) >>> 0;
  const sign = (w & 0x80000000) >>> 0;
  let bias = (shl1 & 0xff000000) >>> 0;
  if (bias < 0x71000000) bias = 0x71000000;
  let base = fr(fr(Math.abs(fr(x)) * SCALE_TO_INF) * SCALE_TO_ZERO);
  base = fr(f32FromBits((bias >>> 1) + 0x07800000) + base);
  const bits = f32Bits(base);
  const nonsign = ((bits >>> 13) & 0x7c00) + (bits & 0x0fff);
  return ((sign >>> 16) | (shl1 > 0xff000000 ? 0x7e00 : nonsign)) & 0xffff;
}

/** Every fp16 value as float32, indexed by its bits (fp16 → f32 is exact). */
const FP16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 31) t[h] = mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else t[h] = sign * (1024 + mant) * 2 ** (exp - 25);
  }
  return t;
})();

/** fp16 bits → the float32 value (exact). */
export function fp16ToFp32(h: number): number {
  return FP16_TABLE[h & 0xffff]!;
}

/** float32 → bf16 bits, round-to-nearest-even, NaN quieted: ggml's `ggml_compute_fp32_to_bf16`. */
export function fp32ToBf16(x: number): number {
  const u = f32Bits(x);
  if ((u & 0x7fffffff) >>> 0 > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) & 0xffff;
}

/** bf16 bits → the float32 value (exact: the bits are the top half of a float32). */
export function bf16ToFp32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/**
 * ggml's `nearest_int`: adds 1.5·2^23 in float32 and reads the mantissa — round half to even of
 * the float32 value for |v| < 2^22 (ggml asserts that range), computed without reading bits there (the
 * hot path of the K-quants); outside the range, the bit trick itself, so even garbage matches ggml.
 */
export function nearestInt(v: number): number {
  const x = fr(v);
  if (!(Math.abs(x) < 4194304)) {
    const bits = f32Bits(x + 12582912);
    return (bits & 0x007fffff) - 0x00400000;
  }
  // x + 1.5·2^23 is exact in float64; fround then rounds it to an integer, half to even, as the
  // float32 addition does in C.
  return fr(x + 12582912) - 12582912;
}

/** C `roundf`: round half away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}
