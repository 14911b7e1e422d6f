// `owntune run` checks before the first stage: every path the recipe names, at its line (or --set),
// and every output folder under the one rule (claimOutputDir); nothing is written when one fails.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentProgress, UserError } from "@owntune/core";
import { afterAll, describe, expect, it } from "vitest";
import { loadRecipe } from "./recipe.js";
import { runRecipe } from "./run.js";

const root = mkdtempSync(join(tmpdir(), "owntune-run-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A recipe file in a fresh folder (also the working directory of the run). */
function recipeIn(lines: string[]): { dir: string; file: string } {
  const dir = join(root, `r${n++}`);
  mkdirSync(dir);
  const file = join(dir, "r.yaml");
  writeFileSync(file, lines.join("\n") + "\n");
  return { dir, file };
}

async function problems(file: string, dir: string, sets: string[] = [], force = false): Promise<string[]> {
  try {
    await runRecipe(await loadRecipe(file, sets), { json: true, debug: false, progress: silentProgress, log: () => {}, cwd: dir, force });
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format().split("\n");
  }
  throw new Error("the run was not refused");
}

describe("runRecipe's checks before the first stage", () => {
  it("names every missing path at its recipe line, and writes nothing", async () => {
    const { dir, file } = recipeIn([
      "name: demo",
      "model:",
      "  path: no-model",
      "curate:",
      "  inputs:",
      "    - path: data.jsonl",
      "    - path: missing.jsonl",
      "  tokenizer: no-tokenizer",
      "export:",
      "  adapter: no-adapter",
    ]);
    writeFileSync(join(dir, "data.jsonl"), '{"text": "x"}\n');
    expect(await problems(file, dir)).toEqual([
      `${file}:3: model.path: no such folder: ${join(dir, "no-model")}`,
      `${file}:7: curate.inputs.1.path: no such file or folder: ${join(dir, "missing.jsonl")}`,
      `${file}:8: curate.tokenizer: no such folder: ${join(dir, "no-tokenizer")}`,
      `${file}:10: export.adapter: no such folder: ${join(dir, "no-adapter")}`,
    ]);
    expect(readdirSync(dir).sort()).toEqual(["data.jsonl", "r.yaml"]);
  });

  it("names a path given with --set as coming from --set", async () => {
    const { dir, file } = recipeIn(["name: demo", "model:", "  path: m", "curate:", "  inputs:", "    - path: data.jsonl"]);
    mkdirSync(join(dir, "m"));
    writeFileSync(join(dir, "m", "config.json"), "{}");
    expect(await problems(file, dir, ["curate.inputs.0.path=other.jsonl"])).toEqual([
      `--set: curate.inputs.0.path: no such file or folder: ${join(dir, "other.jsonl")}`,
    ]);
    // A folder without config.json is not a model folder.
    rmSync(join(dir, "m", "config.json"));
    writeFileSync(join(dir, "data.jsonl"), '{"text": "x"}\n');
    expect(await problems(file, dir)).toEqual([`${file}:3: model.path: not a model folder (no config.json): ${join(dir, "m")}`]);
  });

  it("refuses a stage output that is a file, or an earlier output without --force, before any stage runs", async () => {
    const { dir, file } = recipeIn([
      "name: demo",
      "model:",
      "  path: m",
      "curate:",
      "  inputs:",
      "    - path: data.jsonl",
      "  out: ds",
      "export: {}",
    ]);
    mkdirSync(join(dir, "m"));
    writeFileSync(join(dir, "m", "config.json"), "{}");
    writeFileSync(join(dir, "data.jsonl"), '{"text": "x"}\n');
    writeFileSync(join(dir, "ds"), "my file");
    expect(await problems(file, dir)).toEqual([
      `${join(dir, "ds")}: curate.out: is an existing file; owntune never replaces a file with an output folder; choose another output folder, or move the file away`,
    ]);
    rmSync(join(dir, "ds"));
    mkdirSync(join(dir, "runs", "demo", "export"), { recursive: true });
    writeFileSync(join(dir, "runs", "demo", "export", "Modelfile"), "FROM ./model-Q4_K_M.gguf\n");
    writeFileSync(join(dir, "runs", "demo", "export", "model-Q4_K_M.gguf"), "");
    expect(await problems(file, dir)).toEqual([
      `${join(dir, "runs", "demo", "export")}: already holds an export folder from an earlier run; pass --force to replace it (the old one stays until the new one is complete)`,
    ]);
    expect(readdirSync(dir).sort()).toEqual(["data.jsonl", "m", "r.yaml", "runs"]);
  });
});
