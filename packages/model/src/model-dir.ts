// A model directory in Hugging Face layout, loaded as one thing: config.json, the weights (checked
// against the config), the tokenizer with its chat template, and the optional generation_config.json.
// Reference: design.md "Files" (model directory), transformers `from_pretrained` file conventions.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { gemma3TokenizerWarning, loadTokenizer, type GemmaTokenizer } from "@owntune/tokenizer";
import { UserError } from "@owntune/core";
import { openCheckpoint, type Checkpoint } from "./checkpoint.js";
import { readGemma4Config, type Gemma4Config } from "./config.js";

/** The fields of `generation_config.json` this toolkit uses (others are kept in `raw`). */
export interface GenerationConfig {
  bos_token_id?: number;
  /** End-of-generation ids (HF allows a number or a list; always a list here). */
  eos_token_id?: number[];
  pad_token_id?: number;
  /** Everything the file holds (sampling defaults such as temperature, top_k, top_p). */
  raw: Record<string, unknown>;
}

/** Reads `generation_config.json` from `dir`, or undefined when the file is absent. */
export async function readGenerationConfig(dir: string): Promise<GenerationConfig | undefined> {
  const file = join(dir, "generation_config.json");
  if (!existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, "utf8"));
  } catch {
    throw new UserError("not valid JSON", { file });
  }
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new UserError("expected a JSON object", { file });
  const r = raw as Record<string, unknown>;
  const id = (field: string): number | undefined => {
    const v = r[field];
    if (v === undefined || v === null) return undefined;
    if (Number.isInteger(v) && (v as number) >= 0) return v as number;
    throw new UserError(`expected a token id, got ${JSON.stringify(v)}`, { file, field });
  };
  let eos: number[] | undefined;
  const e = r.eos_token_id;
  if (Array.isArray(e) && e.every((x) => Number.isInteger(x) && x >= 0)) eos = e as number[];
  else if (e !== undefined && e !== null) eos = [id("eos_token_id")!];
  return { bos_token_id: id("bos_token_id"), eos_token_id: eos, pad_token_id: id("pad_token_id"), raw: r };
}

/** Everything in a model directory. Close `checkpoint` when done. */
export interface ModelDir {
  dir: string;
  config: Gemma4Config;
  checkpoint: Checkpoint;
  tokenizer: GemmaTokenizer;
  generationConfig: GenerationConfig | undefined;
  /** Things the user should hear about (e.g. the Gemma 3 fallback tokenizer is in use). */
  warnings: string[];
}

/**
 * Loads a model directory: config (text-only or multimodal `text_config` layout), weights checked
 * against it, tokenizer (the Gemma 3 fallback, with a warning, when the folder has none), generation
 * config. Every problem is a UserError naming the file.
 */
export async function loadModelDir(dir: string): Promise<ModelDir> {
  if (!existsSync(dir)) throw new UserError("no such directory", { file: dir });
  const config = await readGemma4Config(join(dir, "config.json"));
  const generationConfig = await readGenerationConfig(dir);
  const tokenizer = await loadTokenizer(dir, { eosTokenIds: generationConfig?.eos_token_id, fallbackToDefault: true });
  const warnings: string[] = [];
  const note = gemma3TokenizerWarning(tokenizer);
  if (note) warnings.push(note);
  checkTokenizerFits(tokenizer, config, dir, warnings);
  const checkpoint = await openCheckpoint(dir, { config, configFile: join(dir, "config.json") });
  return { dir, config, checkpoint, tokenizer, generationConfig, warnings };
}

/**
 * The tokenizer's vocabulary must fit the embedding table: ids ≥ vocab_size would index past it.
 * Added tokens beyond the table (Gemma 3's `<image_soft_token>`) only earn a warning.
 */
export function checkTokenizerFits(tokenizer: GemmaTokenizer, config: Gemma4Config, dir: string, warnings: string[]): void {
  if (tokenizer.vocabSize > config.vocab_size) {
    throw new UserError(`tokenizer.json has ${tokenizer.vocabSize} vocabulary entries but config.json vocab_size is ${config.vocab_size}`, {
      file: join(dir, "config.json"),
      field: "vocab_size",
      hint: "the tokenizer and the weights must come from the same model",
    });
  }
  const beyond = tokenizer.tokensBeyondVocab.filter((t) => t.id >= config.vocab_size);
  if (beyond.length > 0) {
    warnings.push(
      `the tokenizer has ${beyond.length} added token(s) past vocab_size ${config.vocab_size} ` +
        `(${beyond
          .slice(0, 3)
          .map((t) => `${t.content} = ${t.id}`)
          .join(", ")}); text containing them cannot be fed to the model`,
    );
  }
}
