import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "@owntune/core";
import { describe, expect, it } from "vitest";
import { parseRecipe, type LoadedRecipe } from "./recipe.js";
import { INIT_MARKER_FILE } from "./recipe-model.js";
import { resolveModelDir } from "./run.js";
import { tempDir } from "@owntune/core/testing";

function problemOf(text: string): string {
  try {
    parseRecipe(text, "r.yaml");
  } catch (e) {
    if (e instanceof UserError) return e.format();
    throw e;
  }
  throw new Error("recipe was accepted");
}

describe("recipe model section", () => {
  it("accepts init with defaults filled", () => {
    const r = parseRecipe("name: demo\nmodel:\n  init: { preset: gemma4-tiny }\n", "r.yaml");
    expect(r.model).toEqual({ init: { preset: "gemma4-tiny", dtype: "bf16" }, base_dtype: "auto" });
  });

  it("wants exactly one of path and init", () => {
    expect(problemOf("name: demo\nmodel:\n  path: m\n  init: { preset: gemma4-tiny }\n")).toBe(
      "r.yaml:3: model: give path or init, not both",
    );
    expect(problemOf("name: demo\nmodel: {}\n")).toBe(
      "r.yaml:2: model: give either path (a model folder) or init (a preset to create one)",
    );
  });

  it("names an unknown preset and a typo'd init key at their lines", () => {
    expect(problemOf("name: demo\nmodel:\n  init:\n    preset: tiny\n    sed: 3\n").split("\n")).toEqual([
      'r.yaml:4: model.init.preset: expected "gemma4-tiny" | "gemma4-e2b" | "gemma4-e4b" | "gemma4-31b", got "tiny"',
      'r.yaml:5: model.init.sed: unknown key (did you mean "seed"?)',
    ]);
  });
});

describe("resolveModelDir with init", () => {
  it("creates runs/<name>/model once, reuses it for the same settings, and recreates it when the seed changes", async () => {
    const cwd = tempDir("init-recipe");
    const loaded = (seed: number): LoadedRecipe => ({
      recipe: parseRecipe(`name: demo\nseed: ${seed}\nmodel:\n  init: { preset: gemma4-tiny }\n`, "r.yaml"),
      file: "r.yaml",
      dir: cwd,
    });
    const logs: string[] = [];
    const io = { progress: { start() {}, update() {}, increment() {}, stop() {} }, log: (l: string) => logs.push(l) };
    const dir = await resolveModelDir(loaded(1), cwd, io);
    expect(dir).toBe(join(cwd, "runs", "demo", "model"));
    expect(JSON.parse(readFileSync(join(dir, INIT_MARKER_FILE), "utf8"))).toEqual({
      format: "owntune-model",
      preset: "gemma4-tiny",
      seed: 1,
      dtype: "bf16",
      tokenizer: null,
    });
    const first = statSync(join(dir, "model.safetensors")).mtimeMs;
    expect(await resolveModelDir(loaded(1), cwd, io)).toBe(dir);
    expect(statSync(join(dir, "model.safetensors")).mtimeMs).toBe(first);
    // Other settings: recreated only with --force (the folder holds an earlier output).
    await expect(resolveModelDir(loaded(2), cwd, io)).rejects.toThrow(/was made from other settings \(seed 1, now 2\)/);
    await resolveModelDir(loaded(2), cwd, { ...io, force: true });
    expect(JSON.parse(readFileSync(join(dir, INIT_MARKER_FILE), "utf8")).seed).toBe(2);
    expect(logs.filter((l) => l.includes("creating gemma4-tiny")).length).toBe(2);
    expect(logs.some((l) => l.includes("made from other settings; recreating it"))).toBe(true);
  });
});
