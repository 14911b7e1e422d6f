// Gopher repetition rules: Rae et al. 2021, App. A.1.1 and Table A1 (arXiv:2112.11446), with the
// thresholds and reason names of datatrove's GopherRepetitionFilter.
import type { z } from "zod";
import type { gopherRepetitionSchema } from "../config.js";
import { codePointLength, drop, findDuplicates, KEEP, splitLines, splitWords, type TextFilter } from "./filter.js";

export type GopherRepetitionConfig = z.output<typeof gopherRepetitionSchema>;

function nGrams(words: readonly string[], n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i + n <= words.length; i++) out.push(words.slice(i, i + n).join(" "));
  return out;
}

/** Characters (joined n-gram length × count) of the most frequent n-gram (datatrove's find_top_duplicate). */
export function topNGramChars(words: readonly string[], n: number): number {
  const counts = new Map<string, number>();
  let best = 0;
  for (const g of nGrams(words, n)) {
    const c = (counts.get(g) ?? 0) + 1;
    counts.set(g, c);
    best = Math.max(best, codePointLength(g) * c);
  }
  // Ties go to the largest product; the paper's "most common n-gram" is then the one covering most text.
  return best;
}

/**
 * Characters inside duplicated n-grams, each word counted once even where repeated n-grams overlap
 * (the paper's rule). An occurrence is a duplicate when the same n-gram appeared earlier.
 */
export function duplicateNGramChars(words: readonly string[], n: number): number {
  const seen = new Set<string>();
  const covered = new Uint8Array(words.length);
  for (let i = 0; i + n <= words.length; i++) {
    const g = words.slice(i, i + n).join(" ");
    if (seen.has(g)) covered.fill(1, i, i + n);
    else seen.add(g);
  }
  let chars = 0;
  for (let i = 0; i < words.length; i++) if (covered[i]) chars += codePointLength(words[i]!);
  return chars;
}

export function gopherRepetitionFilter(cfg: GopherRepetitionConfig): TextFilter {
  return {
    name: "gopher_repetition",
    apply(text) {
      const total = codePointLength(text);
      if (total === 0) return KEEP;
      const paragraphs = text.trim().split(/\n{2,}/);
      const para = findDuplicates(paragraphs);
      if (cfg.dup_para_frac !== null && para.count / paragraphs.length > cfg.dup_para_frac) return drop("dup_para_frac");
      if (cfg.dup_para_char_frac !== null && para.chars / total > cfg.dup_para_char_frac) return drop("dup_para_char_frac");
      const lines = splitLines(text);
      const line = findDuplicates(lines);
      if (cfg.dup_line_frac !== null && lines.length > 0 && line.count / lines.length > cfg.dup_line_frac) return drop("dup_line_frac");
      if (cfg.dup_line_char_frac !== null && line.chars / total > cfg.dup_line_char_frac) return drop("dup_line_char_frac");
      const words = splitWords(text);
      for (const [n, frac] of cfg.top_n_grams) {
        if (words.length < n) continue;
        if (topNGramChars(words, n) / total > frac) return drop(`top_${n}_gram`);
      }
      for (const [n, frac] of cfg.dup_n_grams) {
        if (words.length < n) continue;
        if (duplicateNGramChars(words, n) / total > frac) return drop(`duplicated_${n}_n_grams`);
      }
      return KEEP;
    },
  };
}
