// Gopher quality rules: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights from
// Training Gopher", App. A.1.1 (arXiv:2112.11446), as datatrove's GopherQualityFilter implements them.
import type { z } from "zod";
import type { gopherQualitySchema } from "../config.js";
import { countOccurrences, drop, hasAlpha, isSymbolWord, KEEP, splitLines, splitWords, type TextFilter } from "./filter.js";

export type GopherQualityConfig = z.output<typeof gopherQualitySchema>;

export function gopherQualityFilter(cfg: GopherQualityConfig): TextFilter {
  const stop = new Set(cfg.stop_words);
  return {
    name: "gopher_quality",
    apply(text) {
      const words = splitWords(text);
      const nWords = words.length;
      const nonSymbol = words.filter((w) => !isSymbolWord(w));
      // Rule 1: 50 ≤ words ≤ 100,000 (symbol-only tokens are not words).
      if (cfg.min_doc_words !== null && nonSymbol.length < cfg.min_doc_words) return drop("gopher_short_doc");
      if (cfg.max_doc_words !== null && nonSymbol.length > cfg.max_doc_words) return drop("gopher_long_doc");
      if (nonSymbol.length === 0 || nWords === 0) return drop("gopher_short_doc");
      // Rule 2: mean word length within [3, 10] characters.
      let chars = 0;
      for (const w of nonSymbol) chars += [...w].length;
      const mean = chars / nonSymbol.length;
      if (cfg.min_avg_word_length !== null && mean < cfg.min_avg_word_length) return drop("gopher_below_avg_threshold");
      if (cfg.max_avg_word_length !== null && mean > cfg.max_avg_word_length) return drop("gopher_above_avg_threshold");
      // Rule 3: symbol-to-word ratio ≤ 0.1 for "#" and for ellipses ("..." or "…").
      if (cfg.max_symbol_word_ratio !== null) {
        if (countOccurrences(text, "#") / nWords > cfg.max_symbol_word_ratio) return drop("gopher_too_many_hashes");
        const ellipses = countOccurrences(text, "...") + countOccurrences(text, "…");
        if (ellipses / nWords > cfg.max_symbol_word_ratio) return drop("gopher_too_many_ellipsis");
      }
      // Rule 4: ≤ 90% of lines start with a bullet; ≤ 30% of lines end with an ellipsis.
      const lines = splitLines(text);
      if (lines.length > 0) {
        if (cfg.max_bullet_lines_ratio !== null) {
          const bullets = lines.filter((l) => /^\s*[•-]/.test(l)).length;
          if (bullets / lines.length > cfg.max_bullet_lines_ratio) return drop("gopher_too_many_bullets");
        }
        if (cfg.max_ellipsis_lines_ratio !== null) {
          const ell = lines.filter((l) => /(\.\.\.|…)\s*$/.test(l)).length;
          if (ell / lines.length > cfg.max_ellipsis_lines_ratio) return drop("gopher_too_many_end_ellipsis");
        }
      }
      // Rule 5: ≥ 80% of words contain an alphabetic character.
      if (cfg.max_non_alpha_words_ratio !== null) {
        const alpha = words.filter(hasAlpha).length;
        if (alpha / nWords < cfg.max_non_alpha_words_ratio) return drop("gopher_below_alpha_threshold");
      }
      // Rule 6: at least 2 of the stop words "the, be, to, of, and, that, have, with".
      if (cfg.min_stop_words !== null) {
        let n = 0;
        for (const w of words) if (stop.has(w)) n++;
        if (n < cfg.min_stop_words) return drop("gopher_enough_stop_words");
      }
      return KEEP;
    },
  };
}
