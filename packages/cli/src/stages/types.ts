// What a recipe stage is: a recipe section (zod) and a runner. The CLI's `run` command walks the
// registered stages in order; each stage's output folder feeds the next.
import type { Progress } from "@owntune/model";
import type { z } from "zod";

export type StageName = "curate" | "train" | "export";

/** Everything a stage runner may use besides its own config section. */
export interface StageContext {
  recipeName: string;
  /** The recipe file, for errors located in it. */
  recipeFile: string;
  /** `--resume`: a stage that can continue an interrupted run does (train). */
  resume: boolean;
  /** `--force`: a stage may replace its own earlier output of the same kind. */
  force: boolean;
  /** The recipe's top-level seed; a stage's own seed field, where it has one, wins. */
  seed: number;
  /** Resolves a path written in the recipe (or --set) against the recipe's folder. */
  resolvePath(path: string): string;
  /** Where this stage writes: the section's `out`, else `runs/<recipe>/<stage>/` under the working directory. */
  outDir: string;
  /** The base model directory (HF layout), from the recipe's `model` section. */
  modelDir: string;
  /** Whether the recipe has a section for this stage. */
  hasStage(name: StageName): boolean;
  /** Output folders of the stages before this one (run now or found from an earlier run). */
  previous: Partial<Record<StageName, string>>;
  json: boolean;
  debug: boolean;
  progress: Progress;
  /** Human-readable status line (stderr; silent under --json). */
  log(line: string): void;
}

export interface StageResult {
  /** The folder the stage wrote. */
  outDir: string;
  /** The stage stopped early on Ctrl-C / SIGTERM (with a checkpoint): later stages do not run. */
  interrupted?: boolean;
  /** A few numbers worth printing (and returned under --json). */
  summary: Record<string, unknown>;
}

export interface StageDef<S extends z.ZodObject = z.ZodObject> {
  name: StageName;
  /** One line for `--help` and `owntune schema`. */
  description: string;
  /** The recipe section (strict; `out` is added by the recipe schema). */
  schema: S;
  run(config: z.output<S>, ctx: StageContext): Promise<StageResult>;
}
