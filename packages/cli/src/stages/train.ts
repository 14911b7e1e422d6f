// The recipe's `train:` stage: LoRA fine-tuning of the recipe's model on the curate stage's dataset (or
// the section's `data`), writing a run directory whose adapter/ feeds the export stage. `owntune train`
// runs the same code (`runTraining`).
import { fineTune, trainSchema, type FineTuneOptions, type FineTuneResult } from "@owntune/lora";
import { UserError } from "@owntune/core";
import { z } from "zod";
import { withInterrupt } from "../interrupt.js";
import type { StageDef } from "./types.js";

export const trainStageSchema = trainSchema.extend({
  data: z
    .string()
    .min(1)
    .optional()
    .describe("Curated dataset folder to train on when the recipe has no curate stage (default: the curate stage's output)."),
});

/** fineTune with Ctrl-C / SIGTERM turned into "checkpoint and stop". */
export function runTraining(options: Omit<FineTuneOptions, "signal">): Promise<FineTuneResult> {
  const log = options.log ?? (() => {});
  return withInterrupt(
    (signal) =>
      process.stderr.write(
        `\n${signal}: stopping after the current micro-batch and writing a checkpoint (press Ctrl-C again to quit at once)\n`,
      ),
    (signal) => fineTune({ ...options, log, signal }),
  );
}

/** The few numbers a stage or the train command prints. */
export function trainSummary(r: FineTuneResult): Record<string, unknown> {
  return {
    status: r.status,
    steps: r.steps,
    total_steps: r.totalSteps,
    loss: r.loss === null ? null : Number(r.loss.toFixed(4)),
    eval_loss: r.evalLoss === null ? null : Number(r.evalLoss.toFixed(4)),
    eval_perplexity: r.evalPerplexity === null ? null : Number(r.evalPerplexity.toFixed(3)),
    tokens_per_s: Number(r.tokensPerSecond.toFixed(1)),
    adapter: r.adapterDir,
  };
}

export const trainStage: StageDef<typeof trainStageSchema> = {
  name: "train",
  description:
    "LoRA fine-tune the model on the curated dataset: adapter/ (PEFT), run.json, metrics.jsonl, report.html, checkpoints for --resume.",
  schema: trainStageSchema,
  output: "run",
  paths: (config, recipe) =>
    config.data !== undefined && !recipe.stages.includes("curate") ? [{ field: ["data"], path: config.data, want: "dir" }] : [],
  async run(config, ctx) {
    const { data, ...train } = config;
    const dataDir = ctx.previous.curate ?? (data !== undefined ? ctx.resolvePath(data) : undefined);
    if (dataDir === undefined) {
      const why = ctx.hasStage("curate")
        ? "the curate stage has not written its dataset yet (run the recipe without --stage, or --stage curate first)"
        : "the recipe has no curate section";
      throw new UserError(`no dataset to train on: ${why}`, {
        file: ctx.recipeFile,
        field: "train.data",
        hint: "or set train.data to a curated dataset folder",
      });
    }
    const r = await runTraining({
      modelDir: ctx.modelDir,
      dataDir,
      outDir: ctx.outDir,
      config: train,
      configFile: ctx.recipeFile,
      fieldPrefix: "train",
      defaultSeed: ctx.seed,
      baseDtype: ctx.baseDtype,
      resume: ctx.resume,
      force: ctx.force,
      progress: ctx.progress,
      log: ctx.log,
    });
    return { outDir: r.outDir, summary: trainSummary(r), interrupted: r.status === "interrupted" };
  },
};
