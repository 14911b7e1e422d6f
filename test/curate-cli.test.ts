// `owntune curate` driven as a child process: exit 0 with a dataset directory `owntune inspect` reads,
// exit 2 with one located line for a malformed row, and nothing left under the output name.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const owntune = (args: string[]) =>
  promisify(execFile)(process.execPath, ["--conditions=@owntune/source", "--import", "tsx", join(root, "packages/cli/src/main.ts"), ...args], { cwd: root }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe("owntune curate", () => {
  it("curates the tiny-chat sample into a dataset that inspect verifies", async () => {
    const out = join(await mkdtemp(join(tmpdir(), "owntune-cli-")), "ds");
    const r = await owntune(["curate", "--input", "datasets/tiny-chat/data.jsonl", "--out", out, "--seq-len", "256", "--workers", "1", "--json"]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.drops.dedup_exact.exact_duplicate).toBeGreaterThan(0);
    const inspect = await owntune(["inspect", out, "--json"]);
    expect(inspect.code).toBe(0);
    const info = JSON.parse(inspect.stdout);
    expect(info.kind).toBe("dataset directory");
    expect(info.verified.train.tokens).toBe(info.splits.train.tokens);
  }, 120_000);

  it("exits 2 naming file:line for a malformed row and writes nothing", async () => {
    const dir = await mkdtemp(join(tmpdir(), "owntune-cli-"));
    await writeFile(join(dir, "bad.jsonl"), '{"text": "fine"}\n{"text": "unterminated}\n');
    const r = await owntune(["curate", "--input", join(dir, "bad.jsonl"), "--out", join(dir, "out"), "--workers", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^error: ${join(dir, "bad.jsonl").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2: malformed JSON .*--skip-bad-rows`, "m"));
    expect(existsSync(join(dir, "out"))).toBe(false);
  }, 60_000);
});
