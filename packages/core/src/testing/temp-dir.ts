// Temporary folders for tests, each removed (recursive, force) once the test file that made it is done,
// whether its tests passed or not: `const dir = tempDir("curate")` anywhere in a test file (top level,
// beforeAll, or inside a test).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";

const made: string[] = [];

// Imported while vitest collects a test file, so this hook belongs to that file's outermost suite.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh folder `owntune-<name>-XXXXXX` under the OS temp dir, removed after this test file. */
export function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `owntune-${name}-`));
  made.push(dir);
  return dir;
}
