// The two rounding helpers of ggml-quants.c, bit-exact (16-bit float conversions: @owntune/core's
// float-convert.ts). Reference: spec/gguf.md §2.0; ggml-quants.c.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The IEEE float32 bit pattern of `x` (rounded to float32 first). */
function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

const fr = Math.fround;

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
