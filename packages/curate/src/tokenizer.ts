// Which tokenizer a curate run uses: the one in the given folder (a model directory or a tokenizer
// folder), else Google's Gemma 3 tokenizer that @owntune/tokenizer ships as its default.
import { gemma3TokenizerWarning, loadDefaultTokenizer, loadTokenizer, type GemmaTokenizer } from "@owntune/tokenizer";
import type { Manifest } from "./manifest.js";

/** Loads the tokenizer of `dir`, or the default Gemma tokenizer when `dir` is undefined. */
export function loadTokenizerFor(dir: string | undefined): Promise<GemmaTokenizer> {
  return dir === undefined ? loadDefaultTokenizer() : loadTokenizer(dir, { fallbackToDefault: true });
}

/** What the main thread needs of the tokenizer (a worker thread sends it, so the main thread never loads one). */
export interface TokenizerInfo {
  /** As manifest.json records it. */
  identity: Manifest["tokenizer"];
  padId: number;
  /** A warning to print (e.g. the Gemma 3 fallback for a Gemma 4 model). */
  note?: string;
}

export function tokenizerInfo(tok: GemmaTokenizer): TokenizerInfo {
  const id = tok.identity;
  return {
    identity: { source: id.source, sha256: id.sha256, config_sha256: id.configSha256, vocab_size: id.vocabSize },
    padId: tok.padId ?? 0,
    note: gemma3TokenizerWarning(tok),
  };
}
