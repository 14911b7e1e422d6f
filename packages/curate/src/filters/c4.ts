// C4 rules: Raffel et al. 2020, "Exploring the Limits of Transfer Learning…" §2.2 (JMLR 21), the
// reference code in TFDS c4_utils.py, and datatrove's C4QualityFilter (defaults and reason names).
// Line rules remove lines; page rules drop the example. The bad-words list is not applied here
// (it would have to be downloaded): put words in the blocklist filter instead.
import type { z } from "zod";
import type { c4Schema } from "../config.js";
import { drop, splitLines, type FilterResult, type TextFilter } from "./filter.js";

export type C4Config = z.output<typeof c4Schema>;

const CITATION = /\[\d*]|\[edit]|\[citation needed]/g;
const END_PUNCTUATION = [".", "?", "!", '"', "'"];
const POLICY_SUBSTRINGS = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"];

/** Sentences in a line: a stand-in for NLTK's punkt: split after . ! ? (and closing quotes) before a space. */
export function countSentences(line: string): number {
  const parts = line.split(/(?<=[.!?]["'”’)\]]*)\s+(?=\S)/u).filter((s) => s.trim() !== "");
  return parts.length;
}

export function c4Filter(cfg: C4Config): TextFilter {
  return {
    name: "c4",
    apply(text, rewrite): FilterResult {
      let sentences = 0;
      const kept: string[] = [];
      for (const raw of splitLines(text)) {
        let line = raw.trim();
        const words = line.split(/\s+/).filter((w) => w !== "");
        // A line with a word longer than 1000 characters is removed.
        if (cfg.max_word_length !== -1 && words.some((w) => w.length > cfg.max_word_length)) continue;
        if (cfg.remove_citations) line = line.replace(CITATION, "");
        // Only lines ending in terminal punctuation (and not an ellipsis) are kept.
        if (cfg.filter_no_terminal_punct && (!END_PUNCTUATION.some((p) => line.endsWith(p)) || line.endsWith("..."))) continue;
        // Lines with fewer than 3 words are removed.
        if (words.length < cfg.min_words_per_line) continue;
        const lower = line.toLowerCase();
        // Any page with "lorem ipsum" is removed.
        if (cfg.filter_lorem_ipsum && lower.includes("lorem ipsum")) return drop("lorem_ipsum");
        // Any line with the word "javascript" is removed.
        if (cfg.filter_javascript && lower.includes("javascript")) continue;
        // Any page with a curly bracket is removed (it is likely code).
        if (cfg.filter_curly_bracket && line.includes("{")) return drop("curly_bracket");
        // Lines about cookies and terms of use are removed.
        if (cfg.filter_policy && POLICY_SUBSTRINGS.some((p) => lower.includes(p))) continue;
        sentences += countSentences(line);
        kept.push(line);
      }
      // Pages with fewer than 5 sentences are removed.
      if (sentences < cfg.min_num_sentences) return drop("too_few_sentences");
      return rewrite ? { keep: true, text: kept.join("\n").trim() } : { keep: true };
    },
  };
}
