// The custom-gradient building blocks: values against float64 versions of the spec's formulas, and
// gradients against central finite differences of those, on wasm and cpu.
import * as tf from "@tensorflow/tfjs";
import { it } from "vitest";
import { fillNormal, seededRandom } from "@owntune/core";
import { gelu, maskedSoftmax, rmsNorm, rope } from "./ops.js";
import { describeBackends, expectClose } from "./testing/check-model.js";
import { centralDiff, f64 } from "./testing/finite-diff.js";

const randn = (n: number, key: string, std = 1) => fillNormal(new Float32Array(n), seededRandom(8, key), 0, std);
const all = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Checks op(x) against f64(x) and d Σ(R ⊙ op(x)) / dx against finite differences of Σ(R ⊙ f64(x)). */
function checkOp(
  label: string,
  shape: number[],
  x: Float32Array,
  op: (t: tf.Tensor) => tf.Tensor,
  f64op: (x: Float64Array) => Float64Array,
): void {
  const R = randn(x.length, label + "R");
  const xt = tf.tensor(x, shape);
  const y = op(xt);
  expectClose(`${label} value vs float64`, y.dataSync(), f64op(f64(x)), 2e-6, shape);
  const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(op(t), tf.tensor(R, shape))))(xt);
  const fd = centralDiff((p) => f64op(p).reduce((acc, v, i) => acc + v * R[i]!, 0), f64(x), all(x.length));
  expectClose(`${label} gradient vs finite differences`, g.dataSync(), fd, 2e-5, shape);
  tf.dispose([xt, y, g]);
}

describeBackends("custom-gradient ops", () => {
  it("rmsNorm (with and without a weight) matches x·(mean(x²)+eps)^(−1/2)·w", () => {
    const D = 5;
    const x = randn(2 * 3 * D, "x", 2);
    const w = randn(D, "w");
    const eps = 1e-6;
    for (const weight of [w, null]) {
      const wt = weight ? tf.tensor1d(weight) : null;
      checkOp(
        `rmsNorm${weight ? "" : " (no weight)"}`,
        [2, 3, D],
        x,
        (t) => rmsNorm(t, wt, eps),
        (p) => {
          const out = new Float64Array(p.length);
          for (let r = 0; r < p.length / D; r++) {
            let ms = 0;
            for (let j = 0; j < D; j++) ms += p[r * D + j]! ** 2;
            const inv = 1 / Math.sqrt(ms / D + eps);
            for (let j = 0; j < D; j++) out[r * D + j] = p[r * D + j]! * inv * (weight ? weight[j]! : 1);
          }
          return out;
        },
      );
      wt?.dispose();
    }
  });

  it("gelu matches 0.5x(1 + tanh(√(2/π)(x + 0.044715x³)))", () => {
    const x = Float32Array.from([-6, -3, -1.5, -0.5, -0.01, 0, 0.01, 0.5, 1.5, 3, 6, ...randn(9, "g", 2)]);
    checkOp("gelu", [x.length], x, gelu, (p) => p.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))));
  });

  it("rope rotates pairs (j, j + d/2) by the given angles", () => {
    const [B, T, N, d] = [2, 3, 2, 6];
    const angles = Float64Array.from({ length: B * T * (d / 2) }, (_, i) => 0.7 * i - 2);
    const cos = tf.tensor(Float32Array.from(angles, Math.cos), [B, T, 1, d / 2]);
    const sin = tf.tensor(Float32Array.from(angles, Math.sin), [B, T, 1, d / 2]);
    const x = randn(B * T * N * d, "rope");
    checkOp(
      "rope",
      [B, T, N, d],
      x,
      (t) => rope(t, cos, sin),
      (p) => {
        const out = new Float64Array(p.length);
        for (let bt = 0; bt < B * T; bt++)
          for (let n = 0; n < N; n++)
            for (let j = 0; j < d / 2; j++) {
              const base = (bt * N + n) * d;
              const a = angles[bt * (d / 2) + j]!;
              out[base + j] = p[base + j]! * Math.cos(a) - p[base + j + d / 2]! * Math.sin(a);
              out[base + j + d / 2] = p[base + j + d / 2]! * Math.cos(a) + p[base + j]! * Math.sin(a);
            }
        return out;
      },
    );
    tf.dispose([cos, sin]);
  });

  it("maskedSoftmax is softmax(scores + mask) with masked keys at exactly zero", () => {
    const [G, T, S] = [2, 4, 5];
    const maskVals = Float32Array.from({ length: T * S }, (_, i) => (i % S > Math.floor(i / S) + 1 ? -1e30 : 0)); // causal-ish
    const mask = tf.tensor(maskVals, [1, T, S]);
    const x = randn(G * T * S, "scores", 2);
    checkOp(
      "maskedSoftmax",
      [G, T, S],
      x,
      (t) => maskedSoftmax(t, mask),
      (p) => {
        const out = new Float64Array(p.length);
        for (let r = 0; r < G * T; r++) {
          const m = maskVals.subarray((r % T) * S, (r % T) * S + S);
          const z = Array.from({ length: S }, (_, s) => (m[s]! < 0 ? -Infinity : p[r * S + s]!));
          const mx = Math.max(...z);
          const e = z.map((v) => Math.exp(v - mx));
          const tot = e.reduce((a, b) => a + b, 0);
          e.forEach((v, s) => (out[r * S + s] = v / tot));
        }
        return out;
      },
    );
    mask.dispose();
  });
});
