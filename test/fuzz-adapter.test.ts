// Seeded fuzzing of a PEFT adapter folder (its safetensors and its adapter_config.json) and the recipe YAML: 1,000 mutated files per parser, each
// accepted or refused with a UserError within the time bound, never a crash, a hang or a huge
// allocation (test/fuzz/harness.ts). `pnpm bench fuzz` runs 10,000 per parser.
import { describe, expect, it } from "vitest";
import { describeFailures, runFuzz } from "./fuzz/harness.js";
import { adapterTarget, adapterConfigTarget, recipeTarget } from "./fuzz/targets.js";

/** Cases per parser in CI; the seed can be changed to explore (OWNTUNE_FUZZ_SEED). */
const CASES = 1000;
const SEED = Number(process.env.OWNTUNE_FUZZ_SEED ?? 11);

describe.each([adapterTarget, adapterConfigTarget, recipeTarget])("fuzzing $name", (target) => {
  it(`accepts or refuses (UserError) each of ${CASES} mutated files, never crashing, hanging or over-allocating`, async () => {
    const r = await runFuzz(target, { cases: CASES, seed: SEED });
    expect(r.failures, describeFailures(r)).toEqual([]);
    expect(r.cases).toBe(CASES);
    // The mutations reach both outcomes: some files still parse, most are refused.
    expect(r.accepted).toBeGreaterThan(0);
    expect(r.refused).toBeGreaterThan(0);
  });
});
