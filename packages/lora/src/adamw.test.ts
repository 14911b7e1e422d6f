// AdamW against the algorithm as published (Loshchilov & Hutter 2019, Algorithm 2, with Adam's bias
// corrections; η_t = lr, decoupled decay λ), written here in float64 independently of adamw.ts, and
// clipping against torch.nn.utils.clip_grad_norm_'s definition.
import { describe, expect, it } from "vitest";
import { AdamW, clipGradients, globalNorm } from "./adamw.js";

/** Algorithm 2 of "Decoupled Weight Decay Regularization", float64 throughout. */
function referenceAdamW(p0: number[], gradsPerStep: number[][], lrs: number[], b1: number, b2: number, eps: number, wd: number): number[] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  gradsPerStep.forEach((g, k) => {
    const t = k + 1;
    for (let i = 0; i < p.length; i++) {
      m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
      v[i] = b2 * v[i]! + (1 - b2) * g[i]! ** 2;
      const mHat = m[i]! / (1 - b1 ** t);
      const vHat = v[i]! / (1 - b2 ** t);
      p[i] = p[i]! - lrs[k]! * (mHat / (Math.sqrt(vHat) + eps) + wd * p[i]!);
    }
  });
  return p;
}

describe("AdamW", () => {
  it("follows the published algorithm over several steps with decay and changing lr", () => {
    const p0 = [0.5, -1.25, 2, 0.001, -0.3];
    const grads = [
      [0.1, -0.2, 0.3, 0, 1e-4],
      [-0.05, 0.4, 0.1, 2, -1e-3],
      [0.3, 0.3, -0.7, -1, 0.5],
      [0, 0, 0, 0, 0],
    ];
    const lrs = [1e-3, 2e-3, 5e-4, 1e-3];
    const want = referenceAdamW(p0, grads, lrs, 0.9, 0.999, 1e-8, 0.01);
    const opt = new AdamW({ betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.01 }, [p0.length]);
    const p = [Float32Array.from(p0)];
    grads.forEach((g, k) => opt.update(p, [Float32Array.from(g)], lrs[k]!));
    // float32 storage of p, m and v between steps: relative error well under 1e-5
    p[0]!.forEach((x, i) => expect(Math.abs(x - want[i]!)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want[i]!))));
    expect(opt.step).toBe(4);
  });

  it("takes a first step of size lr·sign(g) when decay is off (the bias-corrected moments cancel)", () => {
    const opt = new AdamW({ betas: [0.9, 0.999], eps: 1e-12, weight_decay: 0 }, [3]);
    const p = [new Float32Array([1, 1, 1])];
    opt.update(p, [new Float32Array([0.5, -3, 1e-3])], 0.01);
    expect([...p[0]!].map((x) => Number(x.toFixed(6)))).toEqual([0.99, 1.01, 0.99]);
  });
});

describe("gradient clipping", () => {
  it("scales to max_norm / (norm + 1e-6) only when the norm exceeds max_norm", () => {
    const g = [new Float32Array([3, 0]), new Float32Array([4])];
    const n = globalNorm(g);
    expect(n).toBe(5);
    expect(clipGradients(g, n, 10)).toBe(1);
    expect([...g[0]!, ...g[1]!]).toEqual([3, 0, 4]);
    const coef = clipGradients(g, n, 1);
    expect(coef).toBeCloseTo(1 / (5 + 1e-6), 12);
    expect(globalNorm(g)).toBeCloseTo(1, 5);
    expect(clipGradients(g, globalNorm(g), null)).toBe(1);
  });
});
