// What a recipe stage is: a recipe section (zod) and a runner. The CLI's `run` command walks the
// registered stages in order; each stage's output folder feeds the next.
import type { OutputKind, Progress } from "@owntune/core";
import type { BaseDtype } from "@owntune/model";
import type { z } from "zod";

export type StageName = "curate" | "train" | "export";

/** Everything a stage runner may use besides its own config section. */
export interface StageContext {
  recipeName: string;
  /** The recipe file, for errors located in it. */
  recipeFile: string;
  /** `--resume`: a stage that can continue an interrupted run does (train). */
  resume: boolean;
  /** The recipe's top-level seed; a stage's own seed field, where it has one, wins. */
  seed: number;
  /** Resolves a path written in the recipe (or --set) against the recipe's folder. */
  resolvePath(path: string): string;
  /** Where this stage writes: the section's `out`, else `runs/<recipe>/<stage>/` under the working directory. */
  outDir: string;
  /** The base model directory (HF layout), from the recipe's `model` section. */
  modelDir: string;
  /** How the frozen base is held while training (the recipe's `model.base_dtype`). */
  baseDtype: BaseDtype | "auto";
  /** Whether the recipe has a section for this stage. */
  hasStage(name: StageName): boolean;
  /** Output folders of the stages before this one (run now or found from an earlier run). */
  previous: Partial<Record<StageName, string>>;
  json: boolean;
  debug: boolean;
  progress: Progress;
  /** Human-readable status line (stderr; silent under --json). */
  log(line: string): void;
  /** The user passed --force: the stage may replace its earlier output (already claimed by `run`). */
  force: boolean;
}

export interface StageResult {
  /** The folder the stage wrote. */
  outDir: string;
  /** The stage stopped early on Ctrl-C / SIGTERM (with a checkpoint): later stages do not run. */
  interrupted?: boolean;
  /** A few numbers worth printing (and returned under --json). */
  summary: Record<string, unknown>;
}

/** A path a recipe section names, checked before the first stage runs. */
export interface RecipePath {
  /** Where it sits in the section, e.g. ["inputs", 0, "path"]. */
  field: Array<string | number>;
  /** As written (relative to the recipe's folder). */
  path: string;
  /** What must be there: a file, a folder, or either. */
  want: "file" | "dir" | "any";
}

export interface StageDef<S extends z.ZodObject = z.ZodObject> {
  name: StageName;
  /** One line for `--help` and `owntune schema`. */
  description: string;
  /** The recipe section (strict; `out` is added by the recipe schema). */
  schema: S;
  /** What its output folder holds: `run` claims it (claimOutputDir) before the first stage runs. */
  output: OutputKind;
  run(config: z.output<S>, ctx: StageContext): Promise<StageResult>;
  /** The existing files and folders this section names (inputs, tokenizers, adapters), checked before any stage runs. */
  paths?(config: z.output<S>, recipe: { stages: readonly StageName[] }): RecipePath[];
}
