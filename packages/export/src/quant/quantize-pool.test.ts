// QuantizePool against quantizeTensor in the calling thread (itself checked byte for byte against
// ggml in quantize.test.ts): parts in order, rows split unevenly, and a worker's error surfacing.
import { afterAll, describe, expect, it } from "vitest";
import { GgmlType, ggmlNBytes } from "./ggml-types.js";
import { quantizeTensor } from "./quantize.js";
import { QuantizePool } from "./quantize-pool.js";

const pool = new QuantizePool(3);
afterAll(() => pool.close());

function gaussianRows(rows: number, perRow: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  const out = new Float32Array(rows * perRow);
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) * (1 + (i % 7));
  return out;
}

const concat = (parts: Uint8Array[]) => Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

describe("QuantizePool", () => {
  for (const [name, type] of [
    ["Q8_0", GgmlType.Q8_0],
    ["Q4_K", GgmlType.Q4_K],
    ["Q6_K", GgmlType.Q6_K],
    ["Q5_0", GgmlType.Q5_0],
  ] as const) {
    it(`gives quantizeTensor's ${name} bytes, in order, for 301 rows over 3 threads`, async () => {
      const data = gaussianRows(301, 512, type);
      const parts = await pool.quantize(type, data, 512);
      expect(parts.length).toBe(3);
      expect(parts.map((p) => p.length).reduce((a, b) => a + b)).toBe(301 * ggmlNBytes(type, 512));
      expect(Buffer.compare(concat(parts), Buffer.from(quantizeTensor(type, data, 512)))).toBe(0);
      expect(data.length).toBe(301 * 512); // the caller's array is copied, not transferred away
    });
  }

  it("converts float types and small chunks in the calling thread, with the same bytes", async () => {
    const data = gaussianRows(1000, 128, 7);
    const f16 = await pool.quantize(GgmlType.F16, data, 128);
    expect(f16.length).toBe(1);
    expect(Buffer.compare(concat(f16), Buffer.from(quantizeTensor(GgmlType.F16, data, 128)))).toBe(0);
    const small = gaussianRows(4, 256, 8);
    expect(
      Buffer.compare(concat(await pool.quantize(GgmlType.Q4_K, small, 256)), Buffer.from(quantizeTensor(GgmlType.Q4_K, small, 256))),
    ).toBe(0);
  });

  it("rejects with the quantizer's message when a thread fails, and keeps working", async () => {
    await expect(pool.quantize(GgmlType.Q4_K, gaussianRows(1000, 96, 9), 96)).rejects.toThrow(
      "Q4_K needs rows of a multiple of 256 values, got 96",
    );
    const data = gaussianRows(600, 256, 10);
    expect(
      Buffer.compare(concat(await pool.quantize(GgmlType.Q4_K, data, 256)), Buffer.from(quantizeTensor(GgmlType.Q4_K, data, 256))),
    ).toBe(0);
  });
});
