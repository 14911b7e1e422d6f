// The recipe's export section: defaults, the quant types it accepts, typos reported at their line.
import { UserError } from "@owntune/core";
import { describe, expect, it } from "vitest";
import { parseRecipe } from "../recipe.js";

const base = "name: demo\nmodel:\n  path: m\n";

describe("the export recipe section", () => {
  it("fills defaults: Q4_K_M, adapter merged, verify on", () => {
    const r = parseRecipe(base + "export: {}\n", "r.yaml") as unknown as { export: Record<string, unknown> };
    expect(r.export).toEqual({
      quant: "Q4_K_M",
      merge: true,
      adapter_gguf: false,
      base_gguf: false,
      merged: false,
      merged_dtype: "bf16",
      verify: true,
    });
  });

  it("reports an unknown quant type and a misspelt key at their lines", () => {
    try {
      parseRecipe(base + "export:\n  quant: Q3_K\n  verfy: true\n", "r.yaml");
      throw new Error("accepted");
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      expect((e as UserError).format()).toBe(
        'r.yaml:5: export.quant: expected "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0" | "Q4_K_M" | "Q5_K_M" | "Q6_K", got "Q3_K"\nr.yaml:6: export.verfy: unknown key (did you mean "verify"?)',
      );
    }
  });
});
