// Which tokenizer a curate run uses: the one in the given folder (a model directory or a tokenizer
// folder), else Google's Gemma 3 tokenizer that the model package ships as its default.
import { loadDefaultTokenizer, loadTokenizer, type GemmaTokenizer } from "@owntune/model";

/** Loads the tokenizer of `dir`, or the default Gemma tokenizer when `dir` is undefined. */
export function loadTokenizerFor(dir: string | undefined): Promise<GemmaTokenizer> {
  return dir === undefined ? loadDefaultTokenizer() : loadTokenizer(dir, { fallbackToDefault: true });
}
