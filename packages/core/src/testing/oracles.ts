// Oracle tests compare us with an independent implementation that may be absent here (ggml's CPU
// build, Go). Where one is missing its tests skip, and the run ends with one line naming every missing
// oracle (test/missing-oracles.ts); with OWNTUNE_REQUIRE_ORACLES=1 (CI) a missing oracle fails instead.
import { appendFileSync } from "node:fs";

/** An oracle a test file needs, and whether it was found. */
export interface OracleCheck {
  /** What is missing, e.g. "go" or "libggml-cpu (haswell build)". */
  name: string;
  /** Whether it is usable here. */
  found: boolean;
  /** Why it is not, for the summary (e.g. "go is not on PATH"). */
  missing: string;
  /** The tests that skip without it, for the summary. */
  tests: string;
}

/** Where the test processes record missing oracles for the run's summary (set in vitest.config.ts). */
export const ORACLE_LOG_ENV = "OWNTUNE_ORACLE_LOG";
/** Set to 1 to make a missing oracle fail its test file instead of skipping its tests. */
export const REQUIRE_ORACLES_ENV = "OWNTUNE_REQUIRE_ORACLES";

/**
 * `check.found`, recording a missing oracle for the run's summary line; throws (failing the test file)
 * when OWNTUNE_REQUIRE_ORACLES=1. Use as `it.skipIf(!oracle({ … }))`.
 */
export function oracle(check: OracleCheck): boolean {
  if (check.found) return true;
  if (process.env[REQUIRE_ORACLES_ENV] === "1") {
    throw new Error(
      `oracle missing: ${check.name} (${check.missing}), needed by ${check.tests}; ${REQUIRE_ORACLES_ENV}=1 makes this a failure instead of a skip`,
    );
  }
  const log = process.env[ORACLE_LOG_ENV];
  if (log) appendFileSync(log, JSON.stringify({ name: check.name, missing: check.missing, tests: check.tests }) + "\n");
  return false;
}
