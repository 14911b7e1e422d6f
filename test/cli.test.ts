// Drives the `owntune` command as a child process, the way users run it, and checks exit codes
// and messages: 0 success, 2 bad usage/config/input with one located line each, 1 anything else.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { owntune, repoRoot } from "./owntune.js";
import { tempDir } from "@owntune/core/testing";

const root = repoRoot;

describe("owntune CLI", () => {
  it("lists its commands under --help and exits 0", () => {
    const r = owntune(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: owntune/);
    for (const cmd of ["run", "schema"]) expect(r.stdout).toContain(cmd);
  });

  it("exits 2 on an unknown command or option", () => {
    expect(owntune(["frobnicate"]).code).toBe(2);
    const r = owntune(["run", "--no-such-flag", "x.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
  });

  it("exits 2 with one located line per problem for an invalid recipe, and no stack", () => {
    const dir = tempDir("cli");
    writeFileSync(join(dir, "bad.yaml"), ["name: demo", "seed: -1", "model:", "  path: m", "  pth: x"].join("\n"));
    const r = owntune(["run", "bad.yaml"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toEqual([
      "error: bad.yaml:2: seed: expected a number >= 0, got -1",
      'error: bad.yaml:5: model.pth: unknown key (did you mean "path"?)',
    ]);
    expect(readdirSync(dir)).toEqual(["bad.yaml"]); // nothing written
  });

  it("exits 2 for a missing recipe file", () => {
    const r = owntune(["run", "nope.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("error: nope.yaml: no such file");
  });

  it("exits 1 without calling it a bug when the system refuses a write", () => {
    const r = owntune(["init-model", "--preset", "gemma4-tiny", "--out", "/dev/null/model"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: E[A-Z]+: .*'\/dev\/null(\/model)?'$/m);
    expect(r.stderr).not.toMatch(/internal error|bug/);
  });

  it("prints a JSON Schema that validates every recipe in recipes/", () => {
    const r = owntune(["schema"]);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as object;
    const validate = new Ajv2020({ strict: false, allErrors: true }).compile(schema);
    const dir = join(root, "recipes");
    const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));
    expect(files).toContain("quickstart.yaml");
    for (const f of files) {
      const ok = validate(parseYaml(readFileSync(join(dir, f), "utf8")));
      expect(ok, `${f}: ${JSON.stringify(validate.errors)}`).toBe(true);
    }
    // and rejects a typo'd key, as the CLI does
    expect(validate({ name: "x", model: { path: "m" }, sede: 1 })).toBe(false);
  });
});
