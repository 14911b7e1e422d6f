// linear (base + LoRA) and mm: values against float64 products and custom gradients against central
// finite differences of float64 code we wrote here from the formulas, on wasm and cpu.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fillNormal, roundToBf16, seededRandom } from "@owntune/core";
import { autoPlacement, baseWeight, linear, mm, WASM_DEVICE_WEIGHT_BUDGET, type BaseWeight } from "./linear.js";
import { countParameters } from "./config.js";
import { gemma4E2b, gemma4E4b, gemma4Tiny } from "./presets.js";
import { describeBackends, expectClose } from "./testing/check-model.js";
import { centralDiff, f64, sampleIndices } from "./testing/finite-diff.js";

const randn = (n: number, key: string, std = 1) => fillNormal(new Float32Array(n), seededRandom(5, key), 0, std);

/** Row-major [m, k]·[k, n] in float64. */
function matmul64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a[i * k + q]! * b[q * n + j]!;
      out[i * n + j] = s;
    }
  return out;
}

function transpose64(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c]!;
  return out;
}

/** Σ R ⊙ (x·Wᵀ + s·(x·Aᵀ)·Bᵀ), the scalar whose gradient we check. */
function loraObjective(
  x: ArrayLike<number>,
  W: ArrayLike<number>,
  A: ArrayLike<number>,
  B: ArrayLike<number>,
  R: ArrayLike<number>,
  N: number,
  inF: number,
  outF: number,
  r: number,
  s: number,
): number {
  const y = matmul64(x, transpose64(W, outF, inF), N, inF, outF);
  const u = matmul64(x, transpose64(A, r, inF), N, inF, r);
  const z = matmul64(u, transpose64(B, outF, r), N, r, outF);
  let total = 0;
  for (let i = 0; i < y.length; i++) total += R[i]! * (y[i]! + s * z[i]!);
  return total;
}

describeBackends("linear", () => {
  const N = 6;
  const inF = 10;
  const outF = 7;
  const r = 3;
  const s = 1.5;
  const W = randn(outF * inF, "W", 0.3);
  const W16 = roundToBf16(W); // what a host-bf16 weight holds; its products and gradients must be exact for it
  const X = randn(N * inF, "x");
  const A = randn(r * inF, "A", 0.3);
  const B = randn(outF * r, "B", 0.3);
  const R = randn(N * outF, "R");
  let device: BaseWeight;
  let host: BaseWeight;
  let hostBf16: BaseWeight;
  beforeAll(() => {
    device = baseWeight("w", W, outF, inF, "device");
    host = baseWeight("w", W, outF, inF, "host");
    hostBf16 = baseWeight("w", W, outF, inF, "host-bf16");
  });
  afterAll(() => {
    device.dispose();
    host.dispose();
    hostBf16.dispose();
  });
  /** The weight each placement multiplies by. */
  const weightOf = (w: BaseWeight) => (w.placement === "host-bf16" ? W16 : W);

  it("computes x·Wᵀ + scale·(x·Aᵀ)·Bᵀ, with the weight on the device, on the host, or on the host as bf16", () => {
    const u = matmul64(matmul64(X, transpose64(A, r, inF), N, inF, r), transpose64(B, outF, r), N, r, outF);
    expect(hostBf16.bytes).toBe(2 * outF * inF);
    for (const w of [device, host, hostBf16]) {
      const want = matmul64(X, transpose64(weightOf(w), outF, inF), N, inF, outF);
      want.forEach((v, i) => (want[i] = v + s * u[i]!));
      const y = tf.tidy(() =>
        linear(tf.tensor3d(X, [2, 3, inF]), w, { a: tf.tensor2d(A, [r, inF]), b: tf.tensor2d(B, [outF, r]), scale: s }),
      );
      expect(y.shape).toEqual([2, 3, outF]);
      expectClose(`linear (${w.placement}) vs float64`, y.dataSync(), want, 1e-5, [N, outF]);
      y.dispose();
    }
  });

  it("has gradients for x, lora_A and lora_B equal to central finite differences", () => {
    for (const w of [device, host, hostBf16]) {
      const Wu = weightOf(w);
      const a = tf.variable(tf.tensor2d(A, [r, inF]));
      const b = tf.variable(tf.tensor2d(B, [outF, r]));
      const x = tf.tensor2d(X, [N, inF]);
      const rT = tf.tensor2d(R, [N, outF]);
      const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(linear(xi, w, { a, b, scale: s }), rT)))(x);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(linear(x, w, { a, b, scale: s }), rT)) as tf.Scalar, [a, b]);
      const x64 = f64(X);
      const a64 = f64(A);
      const b64 = f64(B);
      const cases: Array<[string, Float64Array, (p: Float64Array) => number, Float32Array]> = [
        ["x", x64, (p) => loraObjective(p, Wu, a64, b64, R, N, inF, outF, r, s), dx.dataSync() as Float32Array],
        ["lora_A", a64, (p) => loraObjective(x64, Wu, p, b64, R, N, inF, outF, r, s), grads[a.name]!.dataSync() as Float32Array],
        ["lora_B", b64, (p) => loraObjective(x64, Wu, a64, p, R, N, inF, outF, r, s), grads[b.name]!.dataSync() as Float32Array],
      ];
      for (const [label, p, f, got] of cases) {
        const idx = sampleIndices(p.length, p.length);
        expectClose(`d/d${label} (${w.placement}) vs finite differences`, got, centralDiff(f, p, idx), 1e-4);
      }
      tf.dispose([a, b, x, rT, dx, ...Object.values(grads)]);
    }
  });

  it("applies LoRA dropout to the adapter's input only, with gradients equal to central finite differences", () => {
    // A fixed mask (0 or 1/(1−p), p = 0.5): y = x·Wᵀ + s·((x ⊙ M)·Aᵀ)·Bᵀ.
    const M = Float32Array.from({ length: N * inF }, (_, i) => ((i * 7 + 3) % 5 < 2 ? 0 : 2));
    let calls = 0;
    const dropoutMask = (rows: number) => {
      calls++;
      expect(rows).toBe(N);
      return tf.tensor2d(M, [N, inF]);
    };
    const a = tf.variable(tf.tensor2d(A, [r, inF]));
    const b = tf.variable(tf.tensor2d(B, [outF, r]));
    const x = tf.tensor2d(X, [N, inF]);
    const rT = tf.tensor2d(R, [N, outF]);
    const objective = (px: Float64Array, pa: Float64Array, pb: Float64Array) => {
      // x·Wᵀ part from the unmasked x, adapter part from x ⊙ M
      const base = loraObjective(px, W, new Float64Array(r * inF), pb, R, N, inF, outF, r, s);
      const masked = px.map((v, i) => v * M[i]!);
      return base + loraObjective(masked, new Float64Array(outF * inF), pa, pb, R, N, inF, outF, r, s);
    };
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(linear(xi, device, { a, b, scale: s, dropoutMask }), rT)))(x);
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.mul(linear(x, device, { a, b, scale: s, dropoutMask }), rT)) as tf.Scalar,
      [a, b],
    );
    const [x64, a64, b64] = [f64(X), f64(A), f64(B)];
    expectClose("objective with dropout vs float64", value.dataSync(), [objective(x64, a64, b64)], 1e-5);
    const cases: Array<[string, Float64Array, (p: Float64Array) => number, Float32Array]> = [
      ["x", x64, (p) => objective(p, a64, b64), dx.dataSync() as Float32Array],
      ["lora_A", a64, (p) => objective(x64, p, b64), grads[a.name]!.dataSync() as Float32Array],
      ["lora_B", b64, (p) => objective(x64, a64, p), grads[b.name]!.dataSync() as Float32Array],
    ];
    for (const [label, p, f, got] of cases) {
      const idx = sampleIndices(p.length, p.length);
      expectClose(`d/d${label} with dropout vs finite differences`, got, centralDiff(f, p, idx), 1e-4);
    }
    expect(calls).toBe(2);
    tf.dispose([a, b, x, rT, dx, value, ...Object.values(grads)]);
  });

  it("gives the base-only path the gradient R·W", () => {
    const x = tf.tensor2d(X, [N, inF]);
    const dx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(linear(xi, device), tf.tensor2d(R, [N, outF]))))(x);
    expectClose("d/dx (no LoRA) vs R·W", dx.dataSync(), matmul64(R, W, N, outF, inF), 1e-5, [N, inF]);
    tf.dispose([x, dx]);
  });

  it("rejects LoRA pairs that do not fit the weight", () => {
    const bad = { a: tf.zeros([r, inF + 1]) as tf.Tensor2D, b: tf.zeros([outF, r]) as tf.Tensor2D, scale: 1 };
    expect(() => linear(tf.zeros([1, inF]), device, bad)).toThrow(
      "w: LoRA A [3,11] / B [7,3] do not fit W [7, 10] (want A [r, 10], B [7, r])",
    );
    tf.dispose([bad.a, bad.b]);
  });
});

describeBackends("mm", () => {
  // Shapes chosen so each of the two ways of forming each gradient is taken at least once.
  const shapes: Array<[number, number, number, number]> = [
    [1, 5, 4, 3],
    [1, 2, 9, 8],
    [3, 7, 2, 6],
    [2, 12, 3, 2],
  ];
  it.each(shapes)("batch %i of [%i, %i]·[%i, ·]: values and gradients equal float64 and finite differences", (n, M, K, Nn) => {
    const a = randn(n * M * K, `a${M}${K}`);
    const b = randn(n * K * Nn, `b${K}${Nn}`);
    const R = randn(n * M * Nn, `r${M}${Nn}`);
    const shapeA = n === 1 ? [M, K] : [n, M, K];
    const shapeB = n === 1 ? [K, Nn] : [n, K, Nn];
    const objective = (pa: ArrayLike<number>, pb: ArrayLike<number>) => {
      let total = 0;
      for (let q = 0; q < n; q++) {
        const y = matmul64(Array.from(pa).slice(q * M * K, (q + 1) * M * K), Array.from(pb).slice(q * K * Nn, (q + 1) * K * Nn), M, K, Nn);
        y.forEach((v, i) => (total += v * R[q * M * Nn + i]!));
      }
      return total;
    };
    const ta = tf.tensor(a, shapeA);
    const tb = tf.tensor(b, shapeB);
    const tr = tf.tensor(R, n === 1 ? [M, Nn] : [n, M, Nn]);
    const [da, db] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x, y), tr)))([ta, tb]);
    const a64 = f64(a);
    const b64 = f64(b);
    expectClose(
      `mm d/da`,
      da!.dataSync(),
      centralDiff((p) => objective(p, b64), a64, sampleIndices(a.length, a.length)),
      1e-4,
    );
    expectClose(
      `mm d/db`,
      db!.dataSync(),
      centralDiff((p) => objective(a64, p), b64, sampleIndices(b.length, b.length)),
      1e-4,
    );
    tf.dispose([ta, tb, tr, da!, db!]);
  });
});

describe("autoPlacement", () => {
  const GiB = 2 ** 30;
  /** Float32 bytes of a config's linears (all non-embedding parameters but norms, near enough here). */
  const f32 = (c: ReturnType<typeof gemma4Tiny>) => 4 * countParameters(c).other;
  it("keeps float32 while it fits a quarter of memory (device, or host past the wasm budget), bf16 beyond", () => {
    expect(autoPlacement(f32(gemma4Tiny()), "wasm", 16 * GiB)).toBe("device");
    expect(autoPlacement(WASM_DEVICE_WEIGHT_BUDGET + 4, "wasm", 16 * GiB)).toBe("host");
    expect(autoPlacement(WASM_DEVICE_WEIGHT_BUDGET + 4, "cpu", 16 * GiB)).toBe("device");
    // E2B: 7.0 GiB of float32 linears; E4B: 14.8 GiB.
    expect(autoPlacement(f32(gemma4E2b()), "wasm", 24 * GiB)).toBe("host-bf16");
    expect(autoPlacement(f32(gemma4E2b()), "wasm", 32 * GiB)).toBe("host");
    expect(autoPlacement(f32(gemma4E4b()), "wasm", 32 * GiB)).toBe("host-bf16");
  });
});
