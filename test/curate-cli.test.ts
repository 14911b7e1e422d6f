// `owntune curate` driven as a child process: exit 0 with a dataset directory `owntune inspect` reads,
// exit 2 with one located line for a malformed row, and nothing left under the output name.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { tempDir } from "@owntune/core/testing";

const root = resolve(import.meta.dirname, "..");
const owntune = (args: string[]) =>
  promisify(execFile)(
    process.execPath,
    ["--conditions=@owntune/source", "--import", "tsx", join(root, "packages/cli/src/main.ts"), ...args],
    { cwd: root },
  ).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe("owntune curate", () => {
  it("curates the tiny-chat sample into a dataset that inspect verifies", async () => {
    const out = join(tempDir("cli"), "ds");
    const r = await owntune([
      "curate",
      "--input",
      "datasets/tiny-chat/data.jsonl",
      "--out",
      out,
      "--seq-len",
      "256",
      "--workers",
      "1",
      "--json",
    ]);
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
    const dir = tempDir("cli");
    await writeFile(join(dir, "bad.jsonl"), '{"text": "fine"}\n{"text": "unterminated}\n');
    const r = await owntune(["curate", "--input", join(dir, "bad.jsonl"), "--out", join(dir, "out"), "--workers", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(`^error: ${join(dir, "bad.jsonl").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:2: malformed JSON .*--skip-bad-rows`, "m"),
    );
    expect(existsSync(join(dir, "out"))).toBe(false);
  }, 60_000);
});

describe("owntune curate --shard / --merge", () => {
  it("merges two shards into the bytes one process writes", async () => {
    const dir = await mkdtemp(join(tmpdir(), "owntune-cli-"));
    try {
      const common = ["--input", "datasets/tiny-chat/data.jsonl", "--seq-len", "256", "--workers", "0", "--json"];
      for (const i of [0, 1])
        expect((await owntune(["curate", ...common, "--shard", `${i}/2`, "--out", join(dir, "parts", String(i))])).code).toBe(0);
      const merged = await owntune(["curate", ...common, "--merge", join(dir, "parts"), "--out", join(dir, "merged")]);
      expect(merged.code).toBe(0);
      const single = await owntune(["curate", ...common, "--out", join(dir, "single")]);
      expect(single.code).toBe(0);
      for (const f of ["manifest.json", "report.html", "train-00000.arrow", "val-00000.arrow"]) {
        expect(
          createHash("sha256")
            .update(await readFile(join(dir, "merged", f)))
            .digest("hex"),
          f,
        ).toBe(
          createHash("sha256")
            .update(await readFile(join(dir, "single", f)))
            .digest("hex"),
        );
      }
      const bad = await owntune(["curate", ...common, "--merge", join(dir, "parts", "0"), "--out", join(dir, "bad")]);
      expect(bad.code).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
