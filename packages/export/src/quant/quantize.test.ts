// Our quantizers against ggml's reference ones (node-llama-cpp's libggml-base.so through FFI):
// bytes must be identical, and dequantized values identical, on edge cases and random blocks.
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, seededRandom } from "@owntune/core";
import { nearestInt, roundAway } from "./ggml-rounding.js";
import { loadGgmlOracle } from "./ggml-oracle.js";
import { GgmlType } from "./ggml-types.js";
import { dequantizeTensor, quantizeTensor } from "./quantize.js";

const N = 256;
const rng = seededRandom(7, "quant-edge-cases");
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
const block = (f: (i: number) => number) => Float32Array.from({ length: N }, (_, i) => f(i));

/** Edge cases, each one 256-value super-block (also 8 Q8_0/Q4_0 blocks). */
const EDGE_CASES: Record<string, Float32Array> = {
  zeros: block(() => 0),
  "constant positive": block(() => 0.37),
  "constant negative": block(() => -2.5),
  "all positive": block(() => Math.abs(gauss())),
  "all negative": block(() => -Math.abs(gauss()) - 0.01),
  "tiny magnitudes (1e-20)": block(() => gauss() * 1e-20),
  "subnormal-fp16 magnitudes (1e-6)": block(() => gauss() * 1e-6),
  "huge magnitudes (1e4)": block(() => gauss() * 1e4),
  "past fp16 range (1e7)": block(() => gauss() * 1e7),
  "one outlier": block((i) => (i === 77 ? 40 : gauss() * 0.01)),
  "negative outlier per sub-block": block((i) => (i % 32 === 5 ? -9 : gauss() * 0.1)),
  "70% zeros": block(() => (rng() < 0.7 ? 0 : gauss())),
  "first sub-blocks zero": block((i) => (i < 96 ? 0 : gauss())),
  "alternate 16-value groups zero": block((i) => ((i >> 4) % 2 === 0 ? 0 : gauss())),
  "fp16-rounded data": block(() => f16BitsToF32(f32ToF16Bits(gauss()))),
  "bf16-rounded data": block(() => bf16BitsToF32(f32ToBf16Bits(gauss()))),
  integers: block(() => Math.round(gauss() * 10)),
  "half steps (rounding ties)": block(() => Math.round(gauss() * 16) / 2),
  "mixed signs, same magnitude": block((i) => (i % 2 ? 1 : -1)),
  "symmetric ramp": block((i) => (i - 127.5) / 128),
};

/** Random super-blocks with a log-uniform scale each (1e-6 … 1e3), several rows. */
function randomRows(rows: number, perRow: number): Float32Array {
  const out = new Float32Array(rows * perRow);
  for (let b = 0; b < out.length / N; b++) {
    const scale = 10 ** (-6 + 9 * rng());
    const offset = rng() < 0.3 ? gauss() * scale : 0;
    for (let i = 0; i < N; i++) out[b * N + i] = gauss() * scale + offset;
  }
  return out;
}

const TYPES = [
  ["F16", GgmlType.F16],
  ["BF16", GgmlType.BF16],
  ["Q8_0", GgmlType.Q8_0],
  ["Q4_0", GgmlType.Q4_0],
  ["Q5_0", GgmlType.Q5_0],
  ["Q5_1", GgmlType.Q5_1],
  ["Q4_K", GgmlType.Q4_K],
  ["Q5_K", GgmlType.Q5_K],
  ["Q6_K", GgmlType.Q6_K],
] as const;

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function sameFloats(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}

describe("ggml's rounding helpers", () => {
  it("rounds half to even in nearestInt and half away from zero in roundAway", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, 3.49].map(nearestInt)).toEqual([0, 2, 2, -0, -2, 3].map((v) => v | 0));
    expect([0.5, 1.5, 2.5, -0.5, -2.5, 0.49999997].map(roundAway)).toEqual([1, 2, 3, -1, -3, 0]);
  });
});

describe.each(TYPES)("%s matches ggml's reference quantizer", (name, type) => {
  const ggml = loadGgmlOracle();

  it.each(Object.entries(EDGE_CASES))("byte for byte on %s", (_, data) => {
    const ours = quantizeTensor(type, data, N);
    const theirs = ggml.quantize(type, data, N);
    const at = firstDiff(ours, theirs);
    expect(at, `first differing byte ${at}: ours ${ours[at]} ggml ${theirs[at]}`).toBe(-1);
    const back = dequantizeTensor(type, ours, N);
    const ggmlBack = ggml.dequantize(type, theirs, N);
    const d = sameFloats(back, ggmlBack);
    expect(d, `dequantized value ${d}: ours ${back[d]} ggml ${ggmlBack[d]}`).toBe(-1);
  });

  it("byte for byte on 2,000 random super-blocks in rows of 1,024", () => {
    const data = randomRows(500, 1024);
    const ours = quantizeTensor(type, data, 1024);
    const theirs = ggml.quantize(type, data, 1024);
    const at = firstDiff(ours, theirs);
    expect(at, `first differing byte ${at} of ${ours.length}`).toBe(-1);
    const n = data.length;
    const d = sameFloats(dequantizeTensor(type, ours, n), ggml.dequantize(type, theirs, n));
    expect(d, `first differing dequantized value ${d}`).toBe(-1);
  });
});
