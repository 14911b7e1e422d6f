// `owntune run`: executes a recipe's stages in order, each stage's output feeding the next.
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UserError, type Progress } from "@owntune/model";
import { ensureInitModel } from "./recipe-model.js";
import { resolveRecipePath, type LoadedRecipe } from "./recipe.js";
import { stages } from "./stages/index.js";
import type { StageContext, StageName, StageResult } from "./stages/types.js";

export interface RunOptions {
  /** Run only this stage (earlier stages' outputs are taken from disk). */
  stage?: string;
  /** Continue an interrupted train stage from its newest checkpoint. */
  resume?: boolean;
  /** Let the train stage replace an earlier owntune run in its folder. */
  force?: boolean;
  json: boolean;
  debug: boolean;
  progress: Progress;
  log(line: string): void;
  /** Folder that `runs/` lives in; the working directory by default. */
  cwd?: string;
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
  return section?.out !== undefined
    ? resolveRecipePath(loaded.dir, section.out)
    : defaultStageDir(cwd, loaded.recipe.name, stage);
}

/** The recipe's model folder: its `path`, or the `init` model under runs/<name>/model/ (created or reused). */
export async function resolveModelDir(loaded: LoadedRecipe, cwd: string, io: Pick<RunOptions, "progress" | "log">): Promise<string> {
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
    io,
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
  const modelDir = await resolveModelDir(loaded, cwd, options);
  const previous: Partial<Record<StageName, string>> = {};
  const report: RunReport = { recipe: loaded.file, stages: [] };
  for (const stage of present) {
    const outDir = stageOutDir(loaded, stage.name, cwd);
    if (options.stage !== undefined && stage.name !== options.stage) {
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
      previous: { ...previous },
      hasStage: (name) => present.some((s) => s.name === name),
      json: options.json,
      debug: options.debug,
      progress: options.progress,
      log: options.log,
    };
    options.log(`[${stage.name}] → ${outDir}`);
    const config = (recipe as Record<string, unknown>)[stage.name];
    const result = await stage.run(config as never, ctx);
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
