// The training config: one strict zod schema for `owntune train --config T.yaml` (the keys without a
// `train:` level) and the recipe's `train:` section. Defaults follow PEFT's LoraConfig and TRL's
// SFTConfig where they exist (r 8, alpha 16, AdamW betas 0.9/0.999, eps 1e-8, max_grad_norm 1.0).
import { didYouMean } from "@owntune/core";
import { z } from "zod";
import { LORA_TARGET_MODULES } from "./adapter.js";

const positiveInt = z.number().int().positive();

/** `"0-14"` or `7`: one layer or an inclusive range of layer indices. */
const layerSelector = z.union([z.number().int().min(0), z.string().regex(/^\d+\s*-\s*\d+$/, 'a layer index or a range like "0-14"')]);

export const loraSchema = z
  .object({
    r: positiveInt.default(8).describe("LoRA rank."),
    alpha: z.number().positive().default(16).describe("LoRA alpha: the update is scaled by alpha/r (alpha/√r with rslora)."),
    dropout: z.number().min(0).lt(1).default(0).describe("Dropout on the adapter's input (PEFT's lora_dropout)."),
    rslora: z.boolean().default(false).describe("Rank-stabilized LoRA: scale alpha/√r instead of alpha/r."),
    targets: z
      .array(z.string())
      .min(1)
      .default([...LORA_TARGET_MODULES])
      .superRefine((names, ctx) => {
        names.forEach((name, i) => {
          if ((LORA_TARGET_MODULES as readonly string[]).includes(name)) return;
          const close = didYouMean(name, LORA_TARGET_MODULES);
          ctx.addIssue({
            code: "custom",
            path: [i],
            message: `unknown target module "${name}"${close ? ` (did you mean "${close}"?)` : ""}; known: ${LORA_TARGET_MODULES.join(", ")}`,
          });
        });
      })
      .describe(
        "Linear modules to adapt: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj. Modules a layer does not have are skipped there (KV-shared layers: k/v; k=v layers: v).",
      ),
    layers: z
      .array(layerSelector)
      .min(1)
      .optional()
      .describe('Adapt only these layers: indices and inclusive ranges, e.g. [0, "10-14"] (default: every layer).'),
    layer_types: z
      .array(z.enum(["sliding", "full"]))
      .min(1)
      .default(["sliding", "full"])
      .describe("Adapt sliding-window layers, full-attention layers, or both."),
  })
  .strict();
export type LoraConfig = z.output<typeof loraSchema>;

export const optimizerSchema = z
  .object({
    lr: z.number().positive().default(2e-4).describe("Peak learning rate."),
    betas: z
      .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
      .default([0.9, 0.999])
      .describe("AdamW's β1, β2."),
    eps: z.number().positive().default(1e-8).describe("AdamW's ε."),
    weight_decay: z.number().min(0).default(0).describe("Decoupled weight decay (AdamW)."),
  })
  .strict();

export const SCHEDULE_KINDS = ["constant", "linear", "cosine"] as const;

export const scheduleSchema = z
  .object({
    kind: z.enum(SCHEDULE_KINDS).default("cosine").describe("constant, linear (to 0) or cosine (to min_lr_ratio·lr) after the warmup."),
    warmup_steps: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe("Steps over which the lr rises linearly: step k of the warmup uses lr·k/warmup_steps."),
    min_lr_ratio: z.number().min(0).max(1).default(0).describe("Cosine only: the lr at the end, as a share of lr."),
  })
  .strict();

export const samplesSchema = z
  .object({
    prompts: z.array(z.string().min(1)).min(1).describe("Prompts to complete at each evaluation and at the end."),
    max_tokens: positiveInt.default(48).describe("Most tokens generated per prompt (greedy)."),
    chat: z.boolean().default(true).describe("Wrap each prompt as a user turn with the model's chat template."),
  })
  .strict();

export const earlyStoppingSchema = z
  .object({
    patience: positiveInt.describe("Stop after this many evaluations in a row without an improvement of the eval loss."),
    min_delta: z.number().min(0).default(0).describe("Smallest decrease of the eval loss that counts as an improvement."),
  })
  .strict();

export const trainSchema = z
  .object({
    lora: loraSchema.prefault({}).describe("The adapter: rank, scale, dropout, which modules of which layers."),
    optimizer: optimizerSchema.prefault({}).describe("AdamW with decoupled weight decay."),
    schedule: scheduleSchema.prefault({}).describe("Learning-rate schedule."),
    batch_size: positiveInt.default(4).describe("Rows per micro-batch."),
    grad_accum: positiveInt.default(1).describe("Micro-batches per optimizer step (the loss is token-weighted over all of them)."),
    steps: positiveInt.optional().describe("Optimizer steps to run (rows continue across epochs). Give steps or epochs, not both."),
    epochs: z
      .number()
      .positive()
      .optional()
      .describe("Passes over the train split (default 1 when steps is not given); the last step may hold fewer rows."),
    max_grad_norm: z.number().positive().nullable().default(1).describe("Clip the global gradient norm to this (null: no clipping)."),
    eval_every: z.number().int().min(0).default(50).describe("Evaluate on the val split every N steps (0: only at the end)."),
    eval_rows: positiveInt.optional().describe("Evaluate on the first N val rows only (default: all)."),
    save_every: z.number().int().min(0).default(50).describe("Write a checkpoint every N steps (0: only on interruption)."),
    keep_checkpoints: positiveInt.default(3).describe("Checkpoints kept (the newest)."),
    keep_best: z
      .boolean()
      .default(false)
      .describe("The final adapter/ holds the weights with the lowest eval loss instead of the last ones."),
    early_stopping: earlyStoppingSchema.optional().describe("Stop when the eval loss stops improving."),
    samples: samplesSchema.optional().describe("Sample generations from these prompts, written to samples.jsonl and report.html."),
    log_every: positiveInt.default(10).describe("Print a line every N steps when there is no progress bar (metrics.jsonl has every step)."),
    seed: z
      .number()
      .int()
      .min(0)
      .max(0xffffffff)
      .optional()
      .describe("Seed for adapter init, dropout and data order (default: the recipe's seed, else 0)."),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.steps !== undefined && c.epochs !== undefined)
      ctx.addIssue({ code: "custom", path: ["epochs"], message: "give steps or epochs, not both" });
    if (c.early_stopping && c.eval_every === 0)
      ctx.addIssue({ code: "custom", path: ["early_stopping"], message: "needs eval_every > 0 (evaluations to compare)" });
  });

export type TrainConfig = z.output<typeof trainSchema>;

/**
 * Fields that do not change the trained adapter, so a resume may change them. Evaluation settings join
 * them when neither keep_best nor early_stopping lets an evaluation decide anything.
 */
export function resumeFreeFields(c: TrainConfig): ReadonlySet<string> {
  const free = ["save_every", "keep_checkpoints", "log_every", "samples"];
  if (!c.keep_best && !c.early_stopping) free.push("eval_every", "eval_rows");
  return new Set(free);
}

/** Layer indices selected by `lora.layers` (undefined: all), checked against the model's layer count. */
export function selectedLayers(config: LoraConfig, numLayers: number): Set<number> | { field: string; message: string } {
  if (config.layers === undefined) return new Set(Array.from({ length: numLayers }, (_, i) => i));
  const out = new Set<number>();
  for (const [i, sel] of config.layers.entries()) {
    const [from, to] = typeof sel === "number" ? [sel, sel] : (sel.split("-").map((s) => Number(s.trim())) as [number, number]);
    if (from > to || to >= numLayers) {
      return { field: `lora.layers.${i}`, message: `${JSON.stringify(sel)} is not within the model's layers 0-${numLayers - 1}` };
    }
    for (let l = from; l <= to; l++) out.add(l);
  }
  return out;
}
