// The recipe's `export:` stage: the base model (+ the train stage's adapter/, or the section's own
// `adapter`) → GGUF, optional adapter.gguf and merged/, Modelfile, verified against llama.cpp.
import { join } from "node:path";
import { exportDir, ourScore, QUANT_MIXES } from "@owntune/export";
import { RunFailure } from "@owntune/core";
import { z } from "zod";
import type { StageDef } from "./types.js";

export const exportSchema = z
  .object({
    quant: z.enum(QUANT_MIXES).default("Q4_K_M").describe("Weight type of the GGUF: F32, F16, BF16, Q8_0, Q4_0, Q4_K_M, Q5_K_M, Q6_K."),
    adapter: z
      .string()
      .min(1)
      .optional()
      .describe("PEFT adapter folder to export when the recipe has no train stage (default: the train stage's adapter/)."),
    merge: z
      .boolean()
      .default(true)
      .describe("Merge the adapter into the GGUF's weights (false: write adapter.gguf, applied at run time)."),
    adapter_gguf: z.boolean().default(false).describe("Also write adapter.gguf when the adapter is merged."),
    base_gguf: z
      .boolean()
      .default(false)
      .describe("With merge and adapter_gguf: also write base-<QUANT>.gguf, the model adapter.gguf applies to, and verify that pair too."),
    merged: z.boolean().default(false).describe("Also write merged/: the model with the adapter merged, Hugging Face layout."),
    merged_dtype: z.enum(["bf16", "f32"]).default("bf16").describe("dtype of merged/."),
    threads: z.number().int().min(1).optional().describe("Threads quantizing the GGUF (default: one per core)."),
    verify: z
      .boolean()
      .default(true)
      .describe("Check the GGUF against llama.cpp (tokenization and log-probabilities); the stage fails when outside tolerance."),
    sample: z
      .object({
        prompt: z.string().min(1).describe("The prompt (a chat user turn)."),
        max_tokens: z.number().int().min(1).max(256).default(48).describe("Most tokens generated."),
      })
      .strict()
      .optional()
      .describe("Let llama.cpp complete a prompt greedily from the exported file, and print it."),
  })
  .strict();

export const exportStage: StageDef<typeof exportSchema> = {
  name: "export",
  description: "Write GGUF (quantized), adapter GGUF, merged safetensors and an Ollama Modelfile; verify against llama.cpp.",
  output: "export",
  schema: exportSchema,
  // With a train stage, the adapter is the one it trains; `adapter` is read only without one.
  paths: (config, recipe) =>
    config.adapter !== undefined && !recipe.stages.includes("train") ? [{ field: ["adapter"], path: config.adapter, want: "dir" }] : [],
  async run(config, ctx) {
    const adapterDir =
      ctx.previous.train !== undefined
        ? join(ctx.previous.train, "adapter")
        : config.adapter !== undefined
          ? ctx.resolvePath(config.adapter)
          : undefined;
    const r = await exportDir({
      modelDir: ctx.modelDir,
      adapterDir,
      outDir: ctx.outDir,
      quant: config.quant,
      noMerge: !config.merge,
      adapterGguf: config.adapter_gguf,
      baseGguf: config.base_gguf,
      sample: config.sample ? { prompt: config.sample.prompt, maxTokens: config.sample.max_tokens, chat: true } : undefined,
      merged: config.merged,
      mergedDtype: config.merged_dtype,
      verify: config.verify,
      threads: config.threads,
      score: ourScore,
      progress: ctx.progress,
      log: ctx.log,
    });
    if (r.verify && !r.verify.ok) {
      throw new RunFailure("verify failed: llama.cpp disagrees with our forward pass", { file: join(r.outDir, "verify.json") });
    }
    if (r.verifyAdapter && !r.verifyAdapter.ok) {
      throw new RunFailure("verify of adapter.gguf failed: llama.cpp with the adapter disagrees with our forward pass", {
        file: join(r.outDir, "verify-adapter.json"),
      });
    }
    if (r.sample) {
      ctx.log(
        "error" in r.sample
          ? `[export] llama.cpp sample failed: ${r.sample.error}`
          : `[export] llama.cpp, greedy, from ${r.gguf}:\n  > ${r.sample.prompt}\n  ${r.sample.completion.trim().replace(/\n/g, "\n  ")}`,
      );
    }
    return {
      outDir: r.outDir,
      summary: {
        gguf: r.gguf,
        bytes: r.bytes,
        mb_per_s: Number((r.sourceBytes / 1e6 / Math.max(r.seconds, 1e-9)).toFixed(1)),
        quantizer: r.quantizer.name,
        ...(r.verify ? { verify_ok: r.verify.ok, max_abs_logprob_diff: r.verify.logprobs.maxAbsDiff } : {}),
        ...(r.verifyAdapter
          ? { verify_adapter_ok: r.verifyAdapter.ok, adapter_max_abs_logprob_diff: r.verifyAdapter.logprobs.maxAbsDiff }
          : {}),
        ...(r.sample && "completion" in r.sample ? { llama_sample: r.sample.completion } : {}),
      },
    };
  },
};
