// The 16-bit conversions against the IEEE 754 definition: every 16-bit pattern decoded from the
// formula (-1)^s · 2^(e−bias) · (1 + m/2^p), and float32 → 16-bit checked against a nearest-value
// search over all representable values (ties to even mantissa, overflow past max + ½ulp to Inf).
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, bf16ToF32, f16BitsToF32, f16ToF32, f32ToBf16, f32ToBf16Bits, f32ToF16, f32ToF16Bits } from "./float-convert.js";

interface Format {
  name: string;
  expBits: number;
  mantBits: number;
}
const HALF: Format = { name: "f16", expBits: 5, mantBits: 10 };
const BF16: Format = { name: "bf16", expBits: 8, mantBits: 7 };

/** The value of 16-bit pattern `h` in `fmt`, straight from the IEEE definition, in float64. */
function ieeeValue(fmt: Format, h: number): number {
  const sign = h >> 15 ? -1 : 1;
  const e = (h >> fmt.mantBits) & ((1 << fmt.expBits) - 1);
  const m = h & ((1 << fmt.mantBits) - 1);
  const bias = (1 << (fmt.expBits - 1)) - 1;
  if (e === (1 << fmt.expBits) - 1) return m === 0 ? sign * Infinity : NaN;
  if (e === 0) return sign * 2 ** (1 - bias) * (m / 2 ** fmt.mantBits);
  return sign * 2 ** (e - bias) * (1 + m / 2 ** fmt.mantBits);
}

/** Positive finite values of `fmt` in increasing order with their bits, plus the first value past the
 * largest one (max + 1 ulp, as if the exponent were unbounded), which stands for +Inf. */
function positiveTable(fmt: Format): { values: number[]; bits: number[] } {
  const values: number[] = [];
  const bits: number[] = [];
  const infBits = ((1 << fmt.expBits) - 1) << fmt.mantBits;
  for (let h = 0; h < infBits; h++) {
    values.push(ieeeValue(fmt, h));
    bits.push(h);
  }
  const bias = (1 << (fmt.expBits - 1)) - 1;
  values.push(2 ** ((1 << fmt.expBits) - 1 - bias)); // unbounded-exponent successor of max → Inf
  bits.push(infBits);
  return { values, bits };
}

/** Round `x` (a float32 value, as float64) to `fmt` by searching the nearest representable value. */
function nearest(table: { values: number[]; bits: number[] }, x: number): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  const { values, bits } = table;
  if (a >= values[values.length - 1]!) return sign | bits[bits.length - 1]!;
  let lo = 0;
  let hi = values.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= a) lo = mid;
    else hi = mid;
  }
  const dLo = a - values[lo]!;
  const dHi = values[hi]! - a;
  if (dLo < dHi) return sign | bits[lo]!;
  if (dHi < dLo) return sign | bits[hi]!;
  return sign | ((bits[lo]! & 1) === 0 ? bits[lo]! : bits[hi]!); // tie: even mantissa
}

const toF32 = (bits: number) => new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0]!;

/** Deterministic float32 test inputs: edge values plus random bit patterns concentrated on the 16-bit range. */
function inputs(fmt: Format, table: { values: number[] }): number[] {
  const out = [
    0,
    -0,
    1,
    -1,
    1.5,
    65504,
    65519.99,
    65520,
    65536,
    1e5,
    -1e5,
    3.4028234663852886e38,
    -3.4028234663852886e38,
    2 ** -24,
    2 ** -25,
    2 ** -25 * 1.0000001,
    3 * 2 ** -26,
    2 ** -14,
    2 ** -14 - 2 ** -25,
    2 ** -126,
    2 ** -149,
    1e-45,
    Infinity,
    -Infinity,
  ].map((v) => Math.fround(v));
  // Every midpoint between consecutive values (exact ties, representable in float32) and its neighbours.
  const v = table.values;
  for (let i = 0; i + 1 < v.length; i += fmt === HALF ? 1 : 7) {
    const mid = (v[i]! + v[i + 1]!) / 2;
    if (Math.fround(mid) === mid) out.push(mid, -mid);
    const bits = new Uint32Array(new Float32Array([mid]).buffer)[0]!;
    out.push(toF32(bits + 1), toF32(bits - 1));
  }
  let s = 0x9e3779b9;
  const next = () => ((s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0), s);
  for (let i = 0; i < 20_000; i++) out.push(toF32(next())); // anywhere
  for (let i = 0; i < 20_000; i++) {
    const exp = 100 + (next() % 50); // around the binary16 range
    out.push(toF32(((next() & 0x80000000) | (exp << 23) | (next() & 0x7fffff)) >>> 0));
  }
  return out.filter((x) => !Number.isNaN(x));
}

describe.each([
  { fmt: HALF, encode: f32ToF16Bits, decode: f16BitsToF32, encodeArr: f32ToF16, decodeArr: f16ToF32 },
  { fmt: BF16, encode: f32ToBf16Bits, decode: bf16BitsToF32, encodeArr: f32ToBf16, decodeArr: bf16ToF32 },
])("$fmt.name", ({ fmt, encode, decode, encodeArr, decodeArr }) => {
  const table = positiveTable(fmt);

  it("decodes all 65,536 bit patterns to their IEEE values", () => {
    let bad = 0;
    let first = "";
    for (let h = 0; h < 65536; h++) {
      const want = ieeeValue(fmt, h);
      const got = decode(h);
      const ok = Number.isNaN(want) ? Number.isNaN(got) : Object.is(got, want);
      if (!ok && bad++ === 0) first = `0x${h.toString(16)}: got ${got}, want ${want}`;
    }
    expect(bad, first).toBe(0);
    const all = new Uint16Array(65536).map((_, i) => i);
    const arr = decodeArr(all);
    for (let h = 0; h < 65536; h++) if (!Number.isNaN(arr[h]!)) expect(arr[h]).toBe(decode(h));
  });

  it("rounds float32 to the nearest value, ties to even, overflowing to Inf", () => {
    const xs = inputs(fmt, table);
    let bad = 0;
    let first = "";
    for (const x of xs) {
      const want = nearest(table, x);
      const got = encode(x);
      if (got !== want && bad++ === 0) first = `${x}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`;
    }
    expect(bad, `${bad} of ${xs.length} wrong; first ${first}`).toBe(0);
    const arr = encodeArr(new Float32Array(xs));
    expect(Array.from(arr)).toEqual(xs.map((x) => encode(x)));
  });

  it("keeps NaN a NaN (sign kept) even when only low payload bits are set, and Inf as Inf", () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0x7f802000]) {
      const h = encode(toF32(bits));
      expect(Number.isNaN(decode(h)), `0x${bits.toString(16)} → 0x${h.toString(16)}`).toBe(true);
      expect(h >> 15).toBe(bits >>> 31);
    }
    expect(decode(encode(Infinity))).toBe(Infinity);
    expect(decode(encode(-Infinity))).toBe(-Infinity);
    expect(Object.is(decode(encode(-0)), -0)).toBe(true);
  });
});

describe("overflow thresholds", () => {
  it("f16: 65519.996 rounds to 65504, the tie 65520 rounds to Inf (max is odd)", () => {
    expect(f16BitsToF32(f32ToF16Bits(Math.fround(65519.99)))).toBe(65504);
    expect(f16BitsToF32(f32ToF16Bits(65520))).toBe(Infinity);
    expect(f16BitsToF32(f32ToF16Bits(-65520))).toBe(-Infinity);
  });
  it("bf16: the largest float32 rounds to Inf, the largest bf16 stays", () => {
    expect(bf16BitsToF32(f32ToBf16Bits(3.4028234663852886e38))).toBe(Infinity);
    const maxBf16 = ieeeValue(BF16, 0x7f7f);
    expect(bf16BitsToF32(f32ToBf16Bits(maxBf16))).toBe(maxBf16);
  });
  it("f16 subnormals: 2^-25 (a tie with 0) rounds to 0, just above it to 2^-24", () => {
    expect(f32ToF16Bits(2 ** -25)).toBe(0);
    expect(f32ToF16Bits(Math.fround(2 ** -25 * 1.0000001))).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // tie between 1 and 2 units → even
  });
});
