// Which modules get LoRA pairs: never a tensor a layer does not have (KV-shared layers' k/v, k=v
// layers' v), selections by layer index and type, and the config errors around them.
import { UserError } from "@owntune/core";
import { gemma4_31b, gemma4E2b, gemma4Tiny } from "@owntune/model";
import { describe, expect, it } from "vitest";
import { describeSkipped, formatLayers, planLora } from "./targets.js";
import { loraSchema, trainSchema } from "./train-config.js";

const lora = (o: Record<string, unknown> = {}) => loraSchema.parse(o);

describe("LoRA targets", () => {
  it("skips k/v on KV-shared layers and v on k=v layers (gemma4-tiny), and nothing else", () => {
    const plan = planLora(gemma4Tiny(), lora());
    const names = plan.modules.map((m) => m.name);
    // tiny: layers 0..5, full layers 1, 3, 5 have k=v, layers 4 and 5 share KV.
    expect(names.filter((n) => n.endsWith("k_proj"))).toEqual([
      "layers.0.self_attn.k_proj",
      "layers.1.self_attn.k_proj",
      "layers.2.self_attn.k_proj",
      "layers.3.self_attn.k_proj",
    ]);
    expect(names.filter((n) => n.endsWith("v_proj"))).toEqual(["layers.0.self_attn.v_proj", "layers.2.self_attn.v_proj"]);
    expect(names.filter((n) => n.endsWith("q_proj"))).toHaveLength(6);
    expect(plan.modules).toHaveLength(6 * 5 + 4 + 2);
    expect(describeSkipped(plan.skipped)).toEqual([
      "v_proj on layers 1, 3 (k=v layers: V is the raw K projection)",
      "k_proj, v_proj on layers 4-5 (KV-shared layers: they read an earlier layer's K/V)",
    ]);
  });

  it("skips k/v on E2B's 20 shared layers and v on 31B's full layers", () => {
    const e2b = planLora(gemma4E2b(), lora({ targets: ["k_proj", "v_proj"] }));
    expect(e2b.modules).toHaveLength(2 * 15);
    expect(describeSkipped(e2b.skipped)).toEqual(["k_proj, v_proj on layers 15-34 (KV-shared layers: they read an earlier layer's K/V)"]);
    const big = planLora(gemma4_31b(), lora({ targets: ["v_proj"] }));
    expect(big.modules).toHaveLength(50);
    expect(big.skipped.map((s) => s.layer)).toEqual([5, 11, 17, 23, 29, 35, 41, 47, 53, 59]);
  });

  it("selects layers by index ranges and by type", () => {
    const plan = planLora(gemma4Tiny(), lora({ targets: ["q_proj"], layers: [0, "2-3"], layer_types: ["full"] }));
    expect(plan.modules.map((m) => m.name)).toEqual(["layers.3.self_attn.q_proj"]);
    expect(plan.layers).toEqual([3]);
    expect(formatLayers([5, 0, 1, 2, 9, 10])).toBe("0-2, 5, 9-10");
  });

  it("refuses a layer outside the model and a selection with nothing to train, naming the field", () => {
    expect(() => planLora(gemma4Tiny(), lora({ layers: ["4-9"] }), { file: "t.yaml", fieldPrefix: "train" })).toThrow(UserError);
    try {
      planLora(gemma4Tiny(), lora({ layers: ["4-9"] }), { file: "t.yaml", fieldPrefix: "train" });
    } catch (e) {
      expect((e as UserError).format()).toBe('t.yaml: train.lora.layers.0: "4-9" is not within the model\'s layers 0-5');
    }
    try {
      planLora(gemma4Tiny(), lora({ targets: ["k_proj", "v_proj"], layers: ["4-5"] }));
      throw new Error("accepted");
    } catch (e) {
      expect((e as UserError).format()).toBe("lora: nothing to train: the selected layers have none of k_proj, v_proj");
    }
  });

  it("rejects an unknown target module with a did-you-mean, and steps with epochs", () => {
    const r = trainSchema.safeParse({ lora: { targets: ["q_proj", "gate_prj"] }, steps: 3, epochs: 1 });
    expect(r.success).toBe(false);
    const messages = r.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(messages).toContain(
      'lora.targets.1: unknown target module "gate_prj" (did you mean "gate_proj"?); known: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj',
    );
    expect(messages).toContain("epochs: give steps or epochs, not both");
  });
});
