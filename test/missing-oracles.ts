// A vitest reporter: after the run, one line naming each oracle that was missing (recorded by core's
// testing/oracles.ts in the test processes) and the tests that skipped for it. Silent when none was.
import { existsSync, readFileSync, rmSync } from "node:fs";
import type { Reporter } from "vitest/reporters";

interface Missing {
  name: string;
  missing: string;
  tests: string;
}

export class MissingOracles implements Reporter {
  constructor(private readonly log: string) {}

  onInit(): void {
    rmSync(this.log, { force: true });
  }

  onTestRunEnd(): void {
    if (!existsSync(this.log)) return;
    const seen = new Map<string, Missing>();
    for (const line of readFileSync(this.log, "utf8").split("\n")) {
      if (!line) continue;
      const m = JSON.parse(line) as Missing;
      seen.set(`${m.name}\t${m.tests}`, m);
    }
    rmSync(this.log, { force: true });
    const parts = [...seen.values()].map((m) => `${m.name} (${m.missing}; skipped: ${m.tests})`);
    console.log(`\noracles missing: ${parts.join("; ")}. OWNTUNE_REQUIRE_ORACLES=1 (as in CI) makes this a failure.\n`);
  }
}
