// @owntune/core's float16/bfloat16 codecs against ggml's own (libggml-base through koffi), bit for bit:
// decoding every 16-bit pattern, and encoding every pattern's value, the ties halfway to its neighbour
// and the float32 values either side of them, infinities, overflow and NaNs. GGUF F16/BF16 rows and
// every quant block's scale go through these functions.
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "@owntune/core";
import { describe, expect, it } from "vitest";
import { loadGgmlOracle } from "./ggml-oracle.js";
import { GgmlType } from "./ggml-types.js";

const ggml = loadGgmlOracle();
const patterns = Uint16Array.from({ length: 65536 }, (_, h) => h);
const bitsOf = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
const hex = (n: number) => `0x${n.toString(16)}`;

/** The first index where two arrays differ, or −1. */
function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : a.length;
}

/** float32 bit patterns to encode: each 16-bit value, the tie with its upper neighbour and one float32 step either side of that tie. */
function encodeCases(decoded: Float32Array): Float32Array {
  const out: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 65536; h++) {
    const v = decoded[h]!;
    const next = decoded[(h + 1) & 0xffff]!;
    out.push(v);
    if (!Number.isFinite(v) || !Number.isFinite(next) || Math.sign(v) !== Math.sign(next) || (h & 0x7fff) === 0x7fff) continue;
    f[0] = (v + next) / 2; // exact in float32: one more significant bit than a 16-bit value holds
    const tie = u[0]!;
    for (const bits of [tie - 1, tie, tie + 1]) {
      u[0] = bits;
      out.push(f[0]!);
    }
  }
  const special = new Uint32Array([
    0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001, 0x7fa00000, 0xff802000, 0x7fffffff, 0x477fefff, 0x477ff000, 0x7f7fffff,
    0x00000001, 0x80000001, 0x33000000, 0x33000001,
  ]);
  const all = new Float32Array(out.length + special.length);
  all.set(out);
  bitsOf(all).set(special, out.length);
  return all;
}

describe.each([
  { name: "binary16", type: GgmlType.F16, kind: "f16" as const, decode: f16ToF32, encode: f32ToF16 },
  { name: "bfloat16", type: GgmlType.BF16, kind: "bf16" as const, decode: bf16ToF32, encode: f32ToBf16 },
])("$name agrees with ggml", ({ type, kind, decode, encode }) => {
  it("decodes every 16-bit pattern to the same float32 bits", () => {
    const ours = bitsOf(decode(patterns));
    const theirs = bitsOf(ggml.dequantize(type, new Uint8Array(patterns.buffer), 65536));
    const at = firstDiff(ours, theirs);
    expect(at, `pattern ${hex(at)}: ours ${hex(ours[at] ?? 0)}, ggml ${hex(theirs[at] ?? 0)}`).toBe(-1);
  });

  it("encodes every pattern's value, the ties between neighbours and the float32 values beside them to the same bits", () => {
    const inputs = encodeCases(decode(patterns));
    const ours = encode(inputs);
    const theirs = ggml.toHalf(kind, inputs);
    const at = firstDiff(ours, theirs);
    expect(at, `float32 ${hex(bitsOf(inputs)[at] ?? 0)}: ours ${hex(ours[at] ?? 0)}, ggml ${hex(theirs[at] ?? 0)}`).toBe(-1);
    expect(inputs.length).toBeGreaterThan(4 * 60_000);
  });
});
