// ggml's products as GgmlMatrix runs them, against float64 products computed here: f32 to float32
// precision, the compact types within their measured rounding (weights and, in ggml, the activations:
// bf16, Q8_0 or Q8_K), for W as given, Wᵀ stored and Wᵀ formed in the graph; and how the libraries load.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadGgml, resetGgmlLoadCache, GGML_DIR_ENV } from "./library.js";
import { BASE_DTYPES, GgmlMatrix, storageType, type BaseDtype, type TransposedCopy } from "./matrix.js";
import { GgmlType } from "./types.js";

/** Deterministic N(0, 1) values (Box–Muller over a 32-bit LCG). */
function gaussian(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

/** a [m, k] · bᵀ with b [n, k], in float64. */
function matmulT(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[j * k + t]!;
      out[i * n + j] = s;
    }
  return out;
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** ‖got − want‖ / ‖want‖ and the max abs difference, printed llm.c-style. */
function relError(label: string, got: ArrayLike<number>, want: Float64Array): number {
  let num = 0;
  let den = 0;
  let max = 0;
  for (let i = 0; i < want.length; i++) {
    const d = got[i]! - want[i]!;
    num += d * d;
    den += want[i]! * want[i]!;
    max = Math.max(max, Math.abs(d));
  }
  const rel = Math.sqrt(num / den);
  console.log(`${label}: relative error ${rel.toExponential(2)}, max abs diff ${max.toExponential(2)}`);
  return rel;
}

// W [out = 512, in = 256]: rows and columns whole Q4_K blocks, row counts multiples of 8 (repacked).
const OUT = 512;
const IN = 256;
const N = 9;
const W = gaussian(OUT * IN, 1).map((v) => v * 0.05);
const X = gaussian(N * IN, 2);
const DY = gaussian(N * OUT, 3);
const Y_REF = matmulT(X, W, N, IN, OUT);
const DX_REF = matmulT(DY, transpose(W, OUT, IN), N, OUT, IN);

/**
 * Relative error bounds, ≈ 2× what this test measured (f32 1.6e-7, bf16 2.4e-3, Q8_0 7.6e-3, Q4_0
 * 8.8e-2, Q4_K 7.3e-2): the weight's rounding (bf16 2^-9 per value; Q8_0
 * ≈ 1/254 of a block's max; Q4 ≈ 1/16 of it) and the activations' (ggml converts them to the weight's
 * dot-product type), both averaging out over the 256- or 512-term sums.
 */
const BOUND: Record<BaseDtype, number> = { f32: 1e-6, bf16: 5e-3, q8_0: 1.5e-2, q4_0: 0.17, q4_k: 0.15 };

describe("GgmlMatrix products", () => {
  const cases: Array<[BaseDtype, TransposedCopy]> = BASE_DTYPES.flatMap((d) =>
    (["stored", "on-the-fly"] as const).map((t): [BaseDtype, TransposedCopy] => [d, t]),
  );
  it.each(cases)("%s with Wᵀ %s: x·Wᵀ and dy·W within the type's rounding of float64", async (dtype, transposed) => {
    const m = await GgmlMatrix.fromF32("w", W, OUT, IN, { dtype, transposed });
    try {
      const y = m.forward(X, N, (v) => v.slice());
      const dx = m.backward(DY, N, (v) => v.slice());
      expect(relError(`${dtype} (Wᵀ ${transposed}) x·Wᵀ`, y, Y_REF)).toBeLessThan(BOUND[dtype]);
      expect(relError(`${dtype} (Wᵀ ${transposed}) dy·W`, dx, DX_REF)).toBeLessThan(BOUND[dtype]);
      const repacked = transposed === "stored" && (dtype === "q4_0" || dtype === "q4_k") && process.arch === "x64";
      expect(m.describe()).toContain(repacked ? "repacked" : transposed === "stored" ? "Wᵀ" : "Wᵀ on-the-fly");
      expect(m.bytes).toBe(
        (transposed === "stored" ? 2 : 1) * OUT * IN * { f32: 4, bf16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q4_k: 144 / 256 }[dtype],
      );
    } finally {
      m.dispose();
    }
  });

  it("keeps the rounding within the type's own: each compact type is measurably coarser than the last", async () => {
    const errors: number[] = [];
    for (const dtype of ["f32", "bf16", "q8_0", "q4_k"] as const) {
      const m = await GgmlMatrix.fromF32("w", W, OUT, IN, { dtype, transposed: "none" });
      errors.push(m.forward(X, N, (y) => relError(`${dtype} ordering`, y, Y_REF)));
      m.dispose();
    }
    for (let i = 1; i < errors.length; i++) expect(errors[i]!).toBeGreaterThan(2 * errors[i - 1]!);
  });

  it("streams rows from a reader without a stored Wᵀ, and refuses input gradients when loaded for inference", async () => {
    const reads: Array<[number, number]> = [];
    const m = await GgmlMatrix.load("w", OUT, IN, { dtype: "q8_0", transposed: "none", blockValues: 100 * IN }, (r0, n) => {
      reads.push([r0, n]);
      return W.subarray(r0 * IN, (r0 + n) * IN);
    });
    try {
      expect(reads).toEqual([
        [0, 100],
        [100, 100],
        [200, 100],
        [300, 100],
        [400, 100],
        [500, 12],
      ]);
      expect(
        relError(
          "q8_0 streamed x·Wᵀ",
          m.forward(X, N, (v) => v.slice()),
          Y_REF,
        ),
      ).toBeLessThan(BOUND.q8_0);
      expect(() => m.backward(DY, N, () => 0)).toThrow("w: loaded for inference (no Wᵀ): no input gradients");
    } finally {
      m.dispose();
    }
  });

  it("stores rows a type's block does not divide in the next type that fits", () => {
    expect(storageType("q4_k", 256)).toBe(GgmlType.Q4_K);
    expect(storageType("q4_k", 96)).toBe(GgmlType.Q4_0);
    expect(storageType("q4_0", 48)).toBe(GgmlType.BF16);
    expect(storageType("f32", 7)).toBe(GgmlType.F32);
  });
});

describe("loading the ggml libraries", () => {
  it("finds node-llama-cpp's libraries and a CPU variant that ggml scores for this machine", () => {
    const load = loadGgml();
    if (!load.ok) throw new Error(load.reason);
    expect(load.libs.release).toMatch(/^v\d/);
    expect(load.libs.cpu.path).toContain(`ggml-cpu-${load.libs.cpu.variant}`);
  });

  it("says why when the folder holds no ggml libraries", async () => {
    const empty = await mkdtemp(join(tmpdir(), "owntune-no-ggml-"));
    const before = process.env[GGML_DIR_ENV];
    try {
      process.env[GGML_DIR_ENV] = empty;
      resetGgmlLoadCache();
      const load = loadGgml();
      expect(load.ok).toBe(false);
      expect(!load.ok && load.reason).toMatch(new RegExp(`^no (lib)?ggml-base\\.(so|dylib|dll) in ${empty}$`));
    } finally {
      if (before === undefined) delete process.env[GGML_DIR_ENV];
      else process.env[GGML_DIR_ENV] = before;
      resetGgmlLoadCache();
      await rm(empty, { recursive: true, force: true });
    }
  });
});
