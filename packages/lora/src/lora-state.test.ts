// The trainable adapter's initialisation (PEFT's: A Kaiming-uniform with a = √5, B zero) and LoRA
// dropout masks (rate, scaling, determinism by context).
import { gemma4Tiny, initBackend } from "@owntune/model";
import { beforeAll, describe, expect, it } from "vitest";
import { dropoutMask, LoraState, loraScaling } from "./lora-state.js";
import { planLora } from "./targets.js";
import { loraSchema } from "./train-config.js";

beforeAll(() => initBackend());

describe("the trainable adapter", () => {
  it("starts as PEFT does: A uniform in ±1/√in with the matching variance, B zero; the same for the same seed", () => {
    const plan = planLora(gemma4Tiny(), loraSchema.parse({ targets: ["gate_proj", "down_proj"] }));
    const s = new LoraState(plan.modules, 8, 2, { seed: 3 });
    const again = new LoraState(plan.modules, 8, 2, { seed: 3 });
    const other = new LoraState(plan.modules, 8, 2, { seed: 4 });
    try {
      plan.modules.forEach((m, i) => {
        const a = s.params[2 * i]!;
        const bound = 1 / Math.sqrt(m.inFeatures);
        expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
        const variance = a.reduce((t, x) => t + x * x, 0) / a.length;
        expect(variance / ((bound * bound) / 3)).toBeGreaterThan(0.9); // U(−b, b) has variance b²/3
        expect(variance / ((bound * bound) / 3)).toBeLessThan(1.1);
        expect(s.params[2 * i + 1]!.every((x) => x === 0)).toBe(true);
        expect(again.params[2 * i]).toEqual(a);
        expect(other.params[2 * i]).not.toEqual(a);
      });
      expect(s.size).toBe(plan.modules.reduce((n, m) => n + 8 * (m.inFeatures + m.outFeatures), 0));
    } finally {
      [s, again, other].forEach((x) => x.dispose());
    }
  });

  it("scales by alpha/r, or alpha/√r with rsLoRA", () => {
    expect(loraScaling(8, 16, false)).toBe(2);
    expect(loraScaling(16, 16, true)).toBe(4);
  });

  it("drops inputs at rate p, scales the kept ones by 1/(1−p), and repeats the mask for the same step and micro-batch", () => {
    const ctx = { seed: 1, p: 0.25, step: 7, micro: 1 };
    const m = dropoutMask(ctx, "layers.0.mlp.up_proj", 200, 100);
    const dropped = m.filter((x) => x === 0).length / m.length;
    expect(dropped).toBeGreaterThan(0.23);
    expect(dropped).toBeLessThan(0.27);
    expect(new Set(m)).toEqual(new Set([0, Math.fround(1 / 0.75)]));
    expect(dropoutMask(ctx, "layers.0.mlp.up_proj", 200, 100)).toEqual(m);
    expect(dropoutMask({ ...ctx, step: 8 }, "layers.0.mlp.up_proj", 200, 100)).not.toEqual(m);
    expect(dropoutMask(ctx, "layers.1.mlp.up_proj", 200, 100)).not.toEqual(m);
  });
});
