// The CI fuzz test of a group of targets: 1,000 mutated files per parser (test/fuzz-*.test.ts, one
// group per file so the groups run in parallel); `pnpm bench fuzz` runs 10,000.
import { describe, expect, it } from "vitest";
import { describeFailures, runFuzz, type FuzzTarget } from "./harness.js";

/** Cases per parser in CI; the seed can be changed to explore (OWNTUNE_FUZZ_SEED). */
export const CI_CASES = 1000;
const SEED = Number(process.env.OWNTUNE_FUZZ_SEED ?? 11);

export function describeFuzz(targets: readonly FuzzTarget[]): void {
  describe.each(targets)("fuzzing $name", (target) => {
    it(`accepts or refuses (UserError) each of ${CI_CASES} mutated files, never crashing, hanging or over-allocating`, async () => {
      const r = await runFuzz(target, { cases: CI_CASES, seed: SEED });
      expect(r.failures, describeFailures(r)).toEqual([]);
      expect(r.cases).toBe(CI_CASES);
      // The mutations reach both outcomes: some files still parse, most are refused.
      expect(r.accepted).toBeGreaterThan(0);
      expect(r.refused).toBeGreaterThan(0);
    });
  });
}
