// `owntune run`: executes a recipe's stages in order, each stage's output feeding the next.
import { existsSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { claimOutputDir, isUserError, UserError, type Progress } from "@owntune/core";
import { ensureInitModel } from "./recipe-model.js";
import { resolveRecipePath, type LoadedRecipe } from "./recipe.js";
import { stages } from "./stages/index.js";
import type { RecipePath, StageContext, StageDef, StageName, StageResult } from "./stages/types.js";

export interface RunOptions {
  /** Run only this stage (earlier stages' outputs are taken from disk). */
  stage?: string;
  /** Continue an interrupted train stage from its newest checkpoint. */
  resume?: boolean;
  json: boolean;
  debug: boolean;
  progress: Progress;
  log(line: string): void;
  /** Folder that `runs/` lives in; the working directory by default. */
  cwd?: string;
  /** Replace earlier outputs of the same kind (never anything else). */
  force?: boolean;
}

export interface RunReport {
  recipe: string;
  /** A stage was interrupted (Ctrl-C / SIGTERM) and left a checkpoint. */
  interrupted?: boolean;
  stages: Array<{ stage: StageName } & StageResult>;
}

/** The default output folder of a stage: `runs/<recipe name>/<stage>/` under the working directory. */
export function defaultStageDir(cwd: string, recipeName: string, stage: string): string {
  return resolve(cwd, "runs", recipeName, stage);
}

/** Output folder of `stage` for this recipe: its `out` (recipe-relative) or the default. */
export function stageOutDir(loaded: LoadedRecipe, stage: StageName, cwd: string): string {
  const section = (loaded.recipe as Record<string, unknown>)[stage] as { out?: string } | undefined;
  return section?.out !== undefined ? resolveRecipePath(loaded.dir, section.out) : defaultStageDir(cwd, loaded.recipe.name, stage);
}

/** The recipe's model folder: its `path`, or the `init` model under runs/<name>/model/ (created or reused). */
export async function resolveModelDir(
  loaded: LoadedRecipe,
  cwd: string,
  io: Pick<RunOptions, "progress" | "log" | "force">,
): Promise<string> {
  const { model, name, seed } = loaded.recipe;
  if (model.path !== undefined) return resolveRecipePath(loaded.dir, model.path);
  const init = model.init!;
  const dir = defaultStageDir(cwd, name, "model");
  await ensureInitModel(
    dir,
    {
      preset: init.preset,
      seed: init.seed ?? seed,
      dtype: init.dtype,
      tokenizer: init.tokenizer !== undefined ? resolveRecipePath(loaded.dir, init.tokenizer) : null,
    },
    { ...io, force: io.force === true },
  );
  return dir;
}

export async function runRecipe(loaded: LoadedRecipe, options: RunOptions): Promise<RunReport> {
  const cwd = options.cwd ?? process.cwd();
  const { recipe } = loaded;
  const present = stages.filter((s) => (recipe as Record<string, unknown>)[s.name] !== undefined);
  if (options.stage !== undefined) {
    const known = stages.map((s) => s.name);
    if (!known.includes(options.stage as StageName)) {
      throw new UserError(`unknown stage "${options.stage}"; this owntune has: ${known.join(", ") || "none yet"}`, {
        field: "--stage",
      });
    }
    if (!present.some((s) => s.name === options.stage)) {
      throw new UserError(`the recipe has no "${options.stage}" section`, { file: loaded.file, field: options.stage });
    }
  }
  if (present.length === 0) {
    throw new UserError(`the recipe has no stage section (expected one of: ${stages.map((s) => s.name).join(", ")})`, {
      file: loaded.file,
    });
  }
  const toRun = present.filter((s) => options.stage === undefined || s.name === options.stage);
  // Before any work: every path the recipe names must be there, and every output folder free to write.
  checkRecipePaths(
    loaded,
    toRun,
    present.map((s) => s.name),
  );
  for (const stage of toRun) {
    const section = (recipe as Record<string, unknown>)[stage.name] as { out?: string };
    await claimOutputDir(stageOutDir(loaded, stage.name, cwd), stage.output, {
      // A training run folder may be continued (--resume) or reused when complete and identical: the
      // train stage decides that itself; here it must only be a run folder, not someone's files.
      force: options.force || stage.output === "run",
      field: section.out !== undefined ? `${stage.name}.out` : undefined,
      log: options.log,
    });
  }
  const modelDir = await resolveModelDir(loaded, cwd, options);
  const previous: Partial<Record<StageName, string>> = {};
  const report: RunReport = { recipe: loaded.file, stages: [] };
  for (const stage of present) {
    const outDir = stageOutDir(loaded, stage.name, cwd);
    if (!toRun.includes(stage)) {
      // Not run now: an earlier run's output, if there is one, still feeds the later stages.
      if (existsSync(outDir)) previous[stage.name] = outDir;
      continue;
    }
    const ctx: StageContext = {
      recipeName: recipe.name,
      recipeFile: loaded.file,
      resume: options.resume === true,
      force: options.force === true,
      seed: recipe.seed,
      resolvePath: (p) => resolveRecipePath(loaded.dir, p),
      outDir,
      modelDir,
      baseDtype: recipe.model.base_dtype,
      previous: { ...previous },
      hasStage: (name) => present.some((s) => s.name === name),
      json: options.json,
      debug: options.debug,
      progress: options.progress,
      log: options.log,
    };
    options.log(`[${stage.name}] → ${outDir}`);
    const config = (recipe as Record<string, unknown>)[stage.name];
    let result: StageResult;
    try {
      result = await stage.run(config as never, ctx);
    } catch (e) {
      // A problem with a field of the section (no file of its own) is reported at the recipe's line.
      if (isUserError(e) && e.file === undefined && e.field !== undefined && loaded.locate) {
        const where = loaded.locate([stage.name, ...e.field.split(".")]);
        throw new UserError(e.message, { ...where, hint: e.hint });
      }
      throw e;
    }
    previous[stage.name] = result.outDir;
    report.stages.push({ stage: stage.name, ...result });
    if (result.interrupted) {
      options.log(`[${stage.name}] interrupted: later stages not run; continue with: owntune run ${loaded.file} --resume`);
      report.interrupted = true;
      break;
    }
  }
  return report;
}

/**
 * Every file and folder the recipe names for the stages about to run (the model, inputs, tokenizers,
 * adapters) must exist: one UserError listing each missing one at its recipe line.
 */
function checkRecipePaths(loaded: LoadedRecipe, toRun: readonly StageDef[], presentNames: readonly StageName[]): void {
  const { recipe } = loaded;
  const named: Array<RecipePath & { section: string }> = [];
  if (recipe.model.path !== undefined) named.push({ section: "model", field: ["path"], path: recipe.model.path, want: "dir" });
  if (recipe.model.init?.tokenizer !== undefined)
    named.push({ section: "model", field: ["init", "tokenizer"], path: recipe.model.init.tokenizer, want: "dir" });
  for (const stage of toRun) {
    const config = (recipe as Record<string, unknown>)[stage.name];
    for (const p of stage.paths?.(config as never, { stages: presentNames }) ?? []) named.push({ section: stage.name, ...p });
  }
  const problems: string[] = [];
  for (const p of named) {
    const abs = resolveRecipePath(loaded.dir, p.path);
    let problem: string | undefined;
    let stat;
    try {
      stat = statSync(abs);
    } catch {
      problem = `no such ${p.want === "dir" ? "folder" : p.want === "file" ? "file" : "file or folder"}: ${abs}`;
    }
    if (stat && p.want === "dir" && !stat.isDirectory()) problem = `expected a folder, got a file: ${abs}`;
    if (stat && p.want === "file" && !stat.isFile()) problem = `expected a file, got a folder: ${abs}`;
    if (!problem && p.section === "model" && p.field[0] === "path" && !existsSync(join(abs, "config.json"))) {
      problem = `not a model folder (no config.json): ${abs}`;
    }
    if (!problem) continue;
    const field = [p.section, ...p.field];
    const where = loaded.locate?.(field) ?? { file: loaded.file, field: field.join(".") };
    problems.push(new UserError(problem, where).format());
  }
  if (problems.length > 0) throw new UserError(problems.join("\n"));
}
