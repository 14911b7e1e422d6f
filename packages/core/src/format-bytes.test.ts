import { describe, expect, it } from "vitest";
import { formatBytes } from "./format-bytes.js";

describe("formatBytes", () => {
  it("picks a decimal unit by size", () => {
    expect([512, 12_345, 34_500_000, 1_234_000_000].map((n) => formatBytes(n))).toEqual(["512 B", "12.3 kB", "34.5 MB", "1.23 GB"]);
  });
  it("writes a fixed unit with 2 decimals below one unit and 1 from there, or the decimals asked for", () => {
    expect(formatBytes(2 ** 29, "GiB")).toBe("0.50 GiB");
    expect(formatBytes(3 * 2 ** 30, "GiB")).toBe("3.0 GiB");
    expect(formatBytes(5e8, "MiB", 0)).toBe("477 MiB");
    expect(formatBytes(2.5e10, "GB", 0)).toBe("25 GB");
  });
});
