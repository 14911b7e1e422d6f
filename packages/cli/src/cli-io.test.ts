// Flag values: integers must be exact (at most 2^53 − 1), so a huge number is refused, not rounded.
import { UserError } from "@owntune/core";
import { describe, expect, it } from "vitest";
import { intFlag, numberFlag } from "./cli-io.js";

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format();
  }
  throw new Error("accepted");
};

describe("intFlag", () => {
  it("accepts integers in range, and nothing when the flag is absent", () => {
    expect(intFlag("--seed", "42", 0)).toBe(42);
    expect(intFlag("--seed", String(2 ** 53 - 1), 0)).toBe(2 ** 53 - 1);
    expect(intFlag("--seed", undefined, 0)).toBeUndefined();
  });

  it.each(["99999999999999999999", "9007199254740993", "1e21", "1.5", "", "-1", "12abc"])("refuses %j", (text) => {
    expect(refusal(() => intFlag("--max-tokens", text, 0))).toBe(
      `--max-tokens: expected an integer >= 0 (at most 2^53 - 1), got "${text}"`,
    );
  });

  it("names its range when it has a maximum", () => {
    expect(refusal(() => intFlag("--seed", "4294967296", 0, 2 ** 32 - 1))).toBe(
      '--seed: expected an integer from 0 to 4294967295, got "4294967296"',
    );
  });

  it("refuses an empty number", () => {
    expect(refusal(() => numberFlag(" ", "--val-fraction", () => true, "a number in [0, 1]"))).toBe(
      '--val-fraction: expected a number in [0, 1], got " "',
    );
  });
});
