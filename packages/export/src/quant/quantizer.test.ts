// The exporter's quantizer choice: ggml's own ggml_quantize_chunk (through @owntune/ggml) gives exactly
// the bytes of our JavaScript quantizers for every type we write, refuses bad rows with the same
// message (ggml itself would abort the process), and the JavaScript path takes over when asked or when
// the libraries are missing.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GGML_DIR_ENV, resetGgmlLoadCache } from "@owntune/ggml";
import { GgmlType, ggmlTypeName } from "./ggml-types.js";
import { quantizeTensor, WRITABLE_TYPES } from "./quantize.js";
import { quantizeRows, quantizerInfo, resetQuantizerChoice } from "./quantizer.js";

function rows(n: number, perRow: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  // A log-uniform scale per 256 values, some offsets, exact zeros and a few outliers.
  const out = new Float32Array(n * perRow);
  for (let b = 0; b < out.length; b += 256) {
    const scale = 10 ** (-5 + 8 * u());
    const offset = u() < 0.3 ? scale : 0;
    for (let i = b; i < b + 256; i++)
      out[i] = u() < 0.05 ? 0 : (Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()) + (u() < 0.01 ? 20 : 0)) * scale + offset;
  }
  return out;
}

const withEnv = async (name: string, value: string, f: () => void | Promise<void>) => {
  const before = process.env[name];
  process.env[name] = value;
  resetGgmlLoadCache();
  resetQuantizerChoice();
  try {
    await f();
  } finally {
    if (before === undefined) delete process.env[name];
    else process.env[name] = before;
    resetGgmlLoadCache();
    resetQuantizerChoice();
  }
};

afterEach(() => resetQuantizerChoice());

describe("quantizeRows", () => {
  it("runs ggml's own quantizer here", () => {
    expect(quantizerInfo().name).toBe("ggml");
  });

  it.each(WRITABLE_TYPES.map((t) => [ggmlTypeName(t), t]))(
    "gives our JavaScript quantizer's %s bytes exactly (300 rows of 512)",
    (_, type) => {
      const data = rows(300, 512, type + 1);
      const ggml = quantizeRows(type, data, 512);
      const js = quantizeTensor(type, data, 512);
      expect(ggml.length).toBe(js.length);
      expect(Buffer.compare(Buffer.from(ggml), Buffer.from(js)), `${ggmlTypeName(type)} bytes differ`).toBe(0);
    },
  );

  it("refuses rows that are not whole blocks with our message, before ggml sees them", () => {
    expect(() => quantizeRows(GgmlType.Q4_K, new Float32Array(192), 96)).toThrow(
      "Q4_K needs rows of a multiple of 256 values, got 96 (192 values)",
    );
    expect(() => quantizeTensor(GgmlType.Q4_K, new Float32Array(192), 96)).toThrow(
      "Q4_K needs rows of a multiple of 256 values, got 96 (192 values)",
    );
  });

  it("uses the JavaScript quantizers under OWNTUNE_KERNELS=tfjs, and when the libraries are missing", async () => {
    const data = rows(4, 256, 5);
    const want = quantizeTensor(GgmlType.Q6_K, data, 256);
    await withEnv("OWNTUNE_KERNELS", "tfjs", () => {
      expect(quantizerInfo()).toEqual({ name: "js", reason: "forced (OWNTUNE_KERNELS=tfjs)" });
      expect(Buffer.compare(Buffer.from(quantizeRows(GgmlType.Q6_K, data, 256)), Buffer.from(want))).toBe(0);
    });
    const empty = await mkdtemp(join(tmpdir(), "owntune-no-ggml-"));
    try {
      await withEnv(GGML_DIR_ENV, empty, () => {
        expect(quantizerInfo()).toEqual({ name: "js", reason: `ggml unavailable: no libggml-base.so in ${empty}` });
        expect(Buffer.compare(Buffer.from(quantizeRows(GgmlType.Q6_K, data, 256)), Buffer.from(want))).toBe(0);
      });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
