// Learning-rate schedules against the closed forms of transformers' schedules (shifted by one warmup
// step, see schedule.ts), at the points where they are easiest to get wrong.
import { describe, expect, it } from "vitest";
import { learningRate } from "./schedule.js";

const lr = 1e-3;
const at = (kind: "constant" | "linear" | "cosine", step: number, warmup = 4, total = 20, min = 0) =>
  learningRate({ kind, warmup_steps: warmup, min_lr_ratio: min }, lr, step, total);

describe("learning-rate schedules", () => {
  it("warm up linearly to the peak, with no zero-lr step", () => {
    expect([1, 2, 3, 4].map((s) => at("cosine", s))).toEqual([lr / 4, lr / 2, (3 * lr) / 4, lr]);
    expect(at("constant", 1, 0)).toBe(lr);
  });

  it("hold the peak (constant), or decay from it after the warmup", () => {
    expect(at("constant", 17)).toBe(lr);
    expect(at("linear", 5)).toBe(lr); // first step after the warmup: progress 0
    expect(at("cosine", 5)).toBe(lr);
    // progress p = (step − 1 − W)/(T − W): linear lr·(1 − p), cosine lr·½(1 + cos πp)
    expect(at("linear", 12)).toBeCloseTo(lr * (1 - 7 / 16), 15);
    expect(at("cosine", 12)).toBeCloseTo(lr * 0.5 * (1 + Math.cos((Math.PI * 7) / 16)), 15);
    expect(at("linear", 20)).toBeCloseTo(lr / 16, 15); // the last step still learns
    expect(at("cosine", 13)).toBeCloseTo(lr / 2, 15); // halfway
  });

  it("bottom out at min_lr_ratio·lr (cosine)", () => {
    expect(at("cosine", 13, 4, 20, 0.1)).toBeCloseTo(lr * (0.1 + 0.9 * 0.5), 15);
    expect(at("cosine", 21, 4, 20, 0.1)).toBeCloseTo(lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * 16) / 16))), 15);
  });
});
