// The recipe's `curate:` stage: raw data → packed Arrow dataset directory (packages/curate).
// The tokenizer is the recipe model's own (its folder's tokenizer.json), unless `tokenizer` names one.
import { curate, curateSchema } from "@owntune/curate";
import type { StageDef } from "./types.js";

export const curateStage: StageDef<typeof curateSchema> = {
  name: "curate",
  description: "Read, filter, dedup, format with loss masks and pack the training data into an Arrow dataset.",
  output: "dataset",
  schema: curateSchema,
  paths: (config) => [
    ...config.inputs.map((input, i) => ({ field: ["inputs", i, "path"], path: input.path, want: "any" as const })),
    ...(config.tokenizer !== undefined ? [{ field: ["tokenizer"], path: config.tokenizer, want: "dir" as const }] : []),
    ...(config.decontaminate?.files ?? []).map((f, i) => ({ field: ["decontaminate", "files", i], path: f, want: "any" as const })),
  ],
  async run(config, ctx) {
    const summary = await curate({
      config,
      outDir: ctx.outDir,
      resolvePath: ctx.resolvePath,
      tokenizerDir: config.tokenizer !== undefined ? ctx.resolvePath(config.tokenizer) : ctx.modelDir,
      seed: ctx.seed,
      progress: ctx.progress,
      log: ctx.log,
    });
    const m = summary.manifest;
    return {
      outDir: summary.outDir,
      summary: {
        train_rows: m.splits.train.rows,
        val_rows: m.splits.val.rows,
        train_tokens: m.splits.train.tokens,
        packing_efficiency: Number(m.splits.train.packing_efficiency.toFixed(4)),
        rows_read: m.counts.rows_read,
        examples_kept: m.counts.examples_kept,
      },
    };
  },
};
