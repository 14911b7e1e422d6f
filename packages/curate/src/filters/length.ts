// Length limits in characters (code points) and words. Token limits apply after tokenization
// (pipeline), where the token count is known.
import type { z } from "zod";
import type { lengthFilterSchema } from "../config.js";
import { codePointLength, drop, isSymbolWord, KEEP, splitWords, type TextFilter } from "./filter.js";

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
        const words = splitWords(text).filter((w) => !isSymbolWord(w)).length;
        if (cfg.min_words !== undefined && words < cfg.min_words) return drop("too_few_words");
        if (cfg.max_words !== undefined && words > cfg.max_words) return drop("too_many_words");
      }
      return KEEP;
    },
  };
}
