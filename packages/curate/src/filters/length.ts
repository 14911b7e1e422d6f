// Length limits in characters (code points) and words. Token limits apply after tokenization
// (pipeline), where the token count is known.
import type { z } from "zod";
import type { lengthFilterSchema } from "../config.js";
import { codePointLength, drop, isSymbolWord, KEEP, WORD_PATTERN, type TextFilter } from "./filter.js";

export type LengthConfig = z.output<typeof lengthFilterSchema>;

export function lengthFilter(cfg: LengthConfig): TextFilter {
  const needWords = cfg.min_words !== undefined || cfg.max_words !== undefined;
  return {
    name: "length",
    apply(text) {
      const chars = codePointLength(text);
      if (cfg.min_chars !== undefined && chars < cfg.min_chars) return drop("too_few_chars");
      if (cfg.max_chars !== undefined && chars > cfg.max_chars) return drop("too_many_chars");
      if (needWords) {
        // Counting stops once min_words is reached when there is no maximum (long documents).
        const words = countWords(text, cfg.max_words === undefined ? cfg.min_words! : Infinity);
        if (cfg.min_words !== undefined && words < cfg.min_words) return drop("too_few_words");
        if (cfg.max_words !== undefined && words > cfg.max_words) return drop("too_many_words");
      }
      return KEEP;
    },
  };
}

/** Words of `text` that are not only punctuation/symbols (splitWords), counted up to `enough`. */
function countWords(text: string, enough: number): number {
  const re = new RegExp(WORD_PATTERN, "gu");
  let n = 0;
  for (let m = re.exec(text); m !== null && n < enough; m = re.exec(text)) if (!isSymbolWord(m[0])) n++;
  return n;
}
