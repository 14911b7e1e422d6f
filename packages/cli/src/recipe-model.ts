// The recipe's `model` section: an existing model folder (`path`) or one created from a preset
// (`init`), exactly one of them. With `init`, `owntune run` writes the model to runs/<recipe>/model/
// once and reuses it while the preset, seed, dtype and tokenizer stay the same (recorded in its marker).
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GEMMA3_TOKENIZER_WRITTEN_WARNING } from "@owntune/tokenizer";
import { claimOutputDir, isUserError, MODEL_MARKER_FILE, UserError, type Progress } from "@owntune/core";
import { BASE_DTYPES, initModel, presetNames, presets } from "@owntune/model";
import { z } from "zod";

/** Marker written in an init-created model: what it was made from, to decide whether to reuse it. */
export const INIT_MARKER_FILE = MODEL_MARKER_FILE;

const initSection = z
  .object({
    preset: z.enum(presetNames as [string, ...string[]]).describe("Model shape to create (gemma4-tiny runs a training step in seconds)."),
    seed: z.number().int().min(0).max(0xffffffff).optional().describe("Seed of the random weights (default: the recipe's seed)."),
    dtype: z.enum(["bf16", "f32"]).default("bf16").describe("Stored dtype of the weights."),
    tokenizer: z.string().min(1).optional().describe("Folder with tokenizer.json to copy in (default: the Gemma 3 tokenizer package)."),
  })
  .strict()
  .describe("Create a model with deterministic random weights at runs/<name>/model/ (reused while these fields stay the same).");

export const modelSection = z
  .object({
    path: z.string().min(1).optional().describe("Base model directory in Hugging Face layout (config.json, safetensors, tokenizer)."),
    init: initSection.optional(),
    base_dtype: z
      .enum(["auto", ...BASE_DTYPES])
      .default("auto")
      .describe(
        "How the frozen base weights are held while training and scoring (QLoRA-style: q8_0, q4_0, q4_k need the native kernels). auto: f32 while it fits in a quarter of memory, else bf16. Exports always merge into the full-precision checkpoint.",
      ),
  })
  .strict()
  .superRefine((m, ctx) => {
    if ((m.path === undefined) === (m.init === undefined)) {
      ctx.addIssue({
        code: "custom",
        message:
          m.path === undefined ? "give either path (a model folder) or init (a preset to create one)" : "give path or init, not both",
      });
    }
  })
  .describe("The base model every stage works on: an existing folder (path) or one created from a preset (init).");

type ModelSection = z.output<typeof modelSection>;

/** What an init-created model was made from; equal markers mean the folder can be reused. */
export interface InitMarker {
  preset: string;
  seed: number;
  dtype: "bf16" | "f32";
  /** Absolute tokenizer folder, or null for the default. */
  tokenizer: string | null;
}

/**
 * The folder of the recipe's `init` model: created at `dir` unless it already holds a model made from
 * the same settings. Made from other settings, it is recreated only with `force` (the one rule of
 * claimOutputDir). Returns whether it was (re)created.
 */
export async function ensureInitModel(
  dir: string,
  marker: InitMarker,
  io: { progress: Progress; log(line: string): void; force: boolean },
): Promise<{ created: boolean }> {
  const markerPath = join(dir, INIT_MARKER_FILE);
  if (existsSync(markerPath)) {
    try {
      const found = JSON.parse(await readFile(markerPath, "utf8")) as Partial<InitMarker>;
      const same = (Object.keys(marker) as Array<keyof InitMarker>).every((k) => found[k] === marker[k]);
      if (same) return { created: false };
      if (!io.force) {
        const was = (Object.keys(marker) as Array<keyof InitMarker>)
          .filter((k) => found[k] !== marker[k])
          .map((k) => `${k} ${JSON.stringify(found[k])}, now ${JSON.stringify(marker[k])}`);
        throw new UserError(`was made from other settings (${was.join("; ")})`, {
          file: dir,
          field: "model.init",
          hint: "pass --force to recreate it",
        });
      }
    } catch (e) {
      if (isUserError(e)) throw e;
      // unreadable marker: claimOutputDir below decides
    }
  }
  const claim = await claimOutputDir(dir, "model", { force: io.force, log: (l) => io.log(`[model] ${l}`) });
  if (claim.replaces) io.log(`[model] ${dir} was made from other settings; recreating it`);
  const config = presets[marker.preset]!();
  io.log(`[model] creating ${marker.preset} (seed ${marker.seed}, ${marker.dtype}) → ${dir}`);
  const r = await initModel({
    outDir: dir,
    config,
    seed: marker.seed,
    dtype: marker.dtype,
    tokenizerDir: marker.tokenizer ?? undefined,
    preset: marker.preset,
    progress: io.progress,
  });
  if (r.isDefaultGemma3) io.log(`[model] warning: ${GEMMA3_TOKENIZER_WRITTEN_WARNING}`);
  return { created: true };
}
