// --quant parsing: case-insensitive names, and a suggestion that prefers the same name written
// without separators over the nearest by edit distance ("q4km" is Q4_K_M, not Q4_0).
import { UserError } from "@owntune/core";
import { describe, expect, it } from "vitest";
import { parseQuant } from "./export.js";

const message = (text: string) => {
  try {
    parseQuant(text);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format();
  }
  throw new Error(`${text} was accepted`);
};

describe("parseQuant", () => {
  it("accepts the mix names in any case", () => {
    expect(parseQuant("q4_k_m")).toBe("Q4_K_M");
    expect(parseQuant("bf16")).toBe("BF16");
  });

  it.each([
    ["q4km", "Q4_K_M"],
    ["Q5-K-M", "Q5_K_M"],
    ["Q4_KM", "Q4_K_M"],
    ["q8", "Q8_0"],
    ["Q6K", "Q6_K"],
  ])("suggests the right mix for %s", (text, mix) => {
    expect(message(text)).toBe(
      `--quant: unknown quant type "${text}" (did you mean "${mix}"?); known: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K`,
    );
  });
});
