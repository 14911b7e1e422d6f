import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { UserError } from "@owntune/core";
import { describe, expect, it } from "vitest";
import { loadRecipe, parseRecipe, parseSets, recipeJsonSchema, resolveRecipePath } from "./recipe.js";
import { defaultStageDir, stageOutDir } from "./run.js";
import { tempDir } from "@owntune/core/testing";

/** The message a recipe problem produces, as the CLI would print it (without "error: "). */
function problemOf(text: string, sets: string[] = [], file = "recipes/r.yaml"): string {
  try {
    parseRecipe(text, file, sets);
  } catch (e) {
    if (e instanceof UserError) return e.format();
    throw e;
  }
  throw new Error("recipe was accepted");
}

const valid = ["# a comment", "name: demo", "seed: 3", "model:", "  path: ../models/tiny", ""].join("\n");

describe("recipe validation", () => {
  it("accepts a valid recipe and fills defaults", () => {
    const r = parseRecipe(valid, "r.yaml");
    expect(r).toMatchObject({ name: "demo", seed: 3, model: { path: "../models/tiny" } });
    const noSeed = parseRecipe("name: demo\nmodel: { path: m }\n", "r.yaml");
    expect(noSeed.seed).toBe(0);
  });

  it("reads model.base_dtype (auto by default) and names a bad one at its line", () => {
    expect(parseRecipe(valid, "r.yaml").model.base_dtype).toBe("auto");
    expect(parseRecipe("name: demo\nmodel: { path: m, base_dtype: q4_k }\n", "r.yaml").model.base_dtype).toBe("q4_k");
    const text = ["name: demo", "model:", "  path: m", "  base_dtype: q3"].join("\n");
    expect(problemOf(text)).toMatch(/^recipes\/r\.yaml:4: model\.base_dtype: .*"auto".*"q4_k".*q3/);
  });

  it("reports a value of the wrong type at its line", () => {
    const text = ["name: demo", "seed: three", "model:", "  path: m"].join("\n");
    expect(problemOf(text)).toBe('recipes/r.yaml:2: seed: expected number, got "three"');
  });

  it("reports an out-of-range number with the bound", () => {
    const text = ["name: demo", "model:", "  path: m", "seed: -4"].join("\n");
    expect(problemOf(text)).toBe("recipes/r.yaml:4: seed: expected a number >= 0, got -4");
  });

  it("reports an unknown key at the key's line with a did-you-mean", () => {
    const text = ["name: demo", "model:", "  path: m", "  pth: m2"].join("\n");
    expect(problemOf(text)).toBe('recipes/r.yaml:4: model.pth: unknown key (did you mean "path"?)');
  });

  it("reports an unknown top-level key without a suggestion when nothing is close", () => {
    const text = ["name: demo", "model:", "  path: m", "zzzzzz: 1"].join("\n");
    expect(problemOf(text)).toBe("recipes/r.yaml:4: zzzzzz: unknown key");
  });

  it("reports a missing required field at its parent's line", () => {
    const text = ["name: demo", "seed: 1"].join("\n");
    expect(problemOf(text)).toBe("recipes/r.yaml:1: model: required field is missing (expected object)");
  });

  it("reports every problem at once, in line order", () => {
    const text = ["name: demo", "seed: 1.5", "model:", "  path: 7", "extra: yes"].join("\n");
    expect(problemOf(text).split("\n")).toEqual([
      "recipes/r.yaml:2: seed: expected an integer, got 1.5",
      "recipes/r.yaml:4: model.path: expected string, got 7",
      "recipes/r.yaml:5: extra: unknown key",
    ]);
  });

  it("reports YAML syntax errors with their line", () => {
    const text = ["name: demo", "model:", "  path: [unclosed", "seed: 1"].join("\n");
    expect(problemOf(text)).toMatch(/^recipes\/r\.yaml:\d: invalid YAML: /);
  });

  it("rejects duplicate keys", () => {
    const text = ["name: demo", "name: again", "model: { path: m }"].join("\n");
    expect(problemOf(text)).toMatch(/^recipes\/r\.yaml:2: invalid YAML: .*[Mm]ap keys must be unique/);
  });

  it("rejects a name that cannot be a folder name", () => {
    const text = ["name: ../escape", "model: { path: m }"].join("\n");
    expect(problemOf(text)).toMatch(/^recipes\/r\.yaml:1: name: expected regex/);
  });
});

describe("--set overrides", () => {
  it("overrides a field, typed by the schema", () => {
    const r = parseRecipe(valid, "r.yaml", ["seed=42", "model.path=/abs/model", "name=other"]);
    expect(r.seed).toBe(42);
    expect(r.model.path).toBe("/abs/model");
    expect(r.name).toBe("other");
  });

  it("keeps a string field a string even when the value looks like a number", () => {
    const r = parseRecipe(valid, "r.yaml", ["name=123", "model.path=2024"]);
    expect(r.name).toBe("123");
    expect(r.model.path).toBe("2024");
  });

  it("creates a missing section", () => {
    const r = parseRecipe("name: demo\n", "r.yaml", ["model.path=m"]);
    expect(r.model.path).toBe("m");
  });

  it("names --set as the source of a type error in an overridden field", () => {
    expect(problemOf(valid, ["seed=lots"])).toBe('--set seed: expected number, got "lots"');
  });

  it("still reports the file's own problems next to an override's", () => {
    const text = ["name: demo", "model:", "  path: m", "  oops: 1"].join("\n");
    expect(problemOf(text, ["seed=x"]).split("\n")).toEqual([
      "recipes/r.yaml:4: model.oops: unknown key",
      '--set seed: expected number, got "x"',
    ]);
  });

  it("rejects an unknown field with a did-you-mean", () => {
    expect(() => parseSets(["model.pathh=x"])).toThrowError(
      expect.objectContaining({ message: 'unknown field (did you mean "model.path"?)', field: "model.pathh" }),
    );
  });

  it("rejects a malformed override", () => {
    expect(() => parseSets(["seed"])).toThrowError('expected "--set a.b=value", got "seed"');
    expect(() => parseSets(["a..b=1"])).toThrowError('"a..b" is not a field path like train.lr');
  });
});

describe("paths", () => {
  it("resolves relative paths against the recipe's folder, keeps absolute ones", () => {
    expect(resolveRecipePath("/r/recipes", "../data/x.jsonl")).toBe("/r/data/x.jsonl");
    expect(resolveRecipePath("/r/recipes", "/abs/x")).toBe("/abs/x");
  });

  it("puts stage outputs under runs/<name>/<stage> of the working directory unless `out` is set", async () => {
    const dir = tempDir("recipe");
    const file = join(dir, "r.yaml");
    writeFileSync(file, valid);
    const loaded = await loadRecipe(file);
    expect(loaded.dir).toBe(dir);
    expect(stageOutDir(loaded, "curate", "/work/cwd")).toBe(resolve("/work/cwd/runs/demo/curate"));
    expect(defaultStageDir("/w", "demo", "export")).toBe(resolve("/w/runs/demo/export"));
    const withOut = { ...loaded, recipe: { ...loaded.recipe, curate: { out: "../out/ds" } } };
    expect(stageOutDir(withOut as typeof loaded, "curate", "/work/cwd")).toBe(resolve(dir, "../out/ds"));
  });

  it("says which file is missing", async () => {
    await expect(loadRecipe("/nonexistent/recipe.yaml")).rejects.toThrowError(
      expect.objectContaining({ message: "no such file", file: "/nonexistent/recipe.yaml" }),
    );
  });
});

describe("recipe JSON Schema", () => {
  it("describes the input side: defaulted fields are optional, unknown keys are not allowed", () => {
    const schema = recipeJsonSchema() as { required?: string[]; additionalProperties?: unknown; properties: Record<string, unknown> };
    expect(schema.required).toEqual(expect.arrayContaining(["name", "model"]));
    expect(schema.required).not.toContain("seed");
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["name", "seed", "model"]));
  });
});
