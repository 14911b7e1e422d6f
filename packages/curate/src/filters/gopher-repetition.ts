// Gopher repetition rules: Rae et al. 2021, App. A.1.1 and Table A1 (arXiv:2112.11446), with the
// thresholds and reason names of datatrove's GopherRepetitionFilter.
import type { z } from "zod";
import type { gopherRepetitionSchema } from "../config.js";
import { codePointLength, drop, findDuplicates, KEEP, splitLines, splitWords, type TextFilter } from "./filter.js";

export type GopherRepetitionConfig = z.output<typeof gopherRepetitionSchema>;

/** A document's words as integer ids (equal words, equal ids) with each word's length in code points. */
export interface WordTable {
  ids: Int32Array;
  lengths: Int32Array;
}

export function wordTable(words: readonly string[]): WordTable {
  const index = new Map<string, number>();
  const ids = new Int32Array(words.length);
  const lengths = new Int32Array(words.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    let id = index.get(w);
    if (id === undefined) index.set(w, (id = index.size));
    ids[i] = id;
    lengths[i] = codePointLength(w);
  }
  return { ids, lengths };
}

const HASH_BASE = 0x01000193;

/**
 * For each n-gram start i, the start of the first n-gram equal to the one at i (i itself when it is
 * new). A rolling hash finds candidates in an open-addressing table; equal hashes are confirmed word
 * by word, so the answer is exact. Replaces building every n-gram as a joined string (4× faster on
 * the curate bench's prose).
 */
export function firstOccurrences(ids: Int32Array, n: number): Int32Array {
  const count = ids.length - n + 1;
  if (count <= 0) return new Int32Array(0);
  const first = new Int32Array(count);
  const hashes = new Int32Array(count);
  let size = 16;
  while (size < 2 * count) size *= 2;
  const mask = size - 1;
  const slots = new Int32Array(size).fill(-1);
  let top = 1; // HASH_BASE^(n-1), for removing the word leaving the window
  for (let k = 1; k < n; k++) top = Math.imul(top, HASH_BASE);
  let h = 0;
  for (let k = 0; k < n; k++) h = (Math.imul(h, HASH_BASE) + ids[k]!) | 0;
  for (let i = 0; i < count; i++) {
    if (i > 0) h = (Math.imul((h - Math.imul(ids[i - 1]!, top)) | 0, HASH_BASE) + ids[i + n - 1]!) | 0;
    hashes[i] = h;
    let slot = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 12;
    for (;;) {
      slot &= mask;
      const j = slots[slot]!;
      if (j < 0) {
        slots[slot] = i;
        first[i] = i;
        break;
      }
      if (hashes[j] === h && sameWords(ids, i, j, n)) {
        first[i] = j;
        break;
      }
      slot++;
    }
  }
  return first;
}

function sameWords(ids: Int32Array, a: number, b: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (ids[a + k] !== ids[b + k]) return false;
  return true;
}

/** Characters (joined n-gram length × count) of the most frequent n-gram (datatrove's find_top_duplicate). */
export function topNGramChars(words: readonly string[], n: number, table = wordTable(words)): number {
  const first = firstOccurrences(table.ids, n);
  const counts = new Int32Array(first.length);
  let best = 0;
  for (let i = 0; i < first.length; i++) counts[first[i]!]!++;
  for (let j = 0; j < first.length; j++) {
    if (counts[j] === 0) continue;
    let chars = n - 1; // the joining spaces
    for (let k = 0; k < n; k++) chars += table.lengths[j + k]!;
    best = Math.max(best, chars * counts[j]!);
  }
  // Ties go to the largest product; the paper's "most common n-gram" is then the one covering most text.
  return best;
}

/**
 * Characters inside duplicated n-grams, each word counted once even where repeated n-grams overlap
 * (the paper's rule). An occurrence is a duplicate when the same n-gram appeared earlier.
 */
export function duplicateNGramChars(words: readonly string[], n: number, table = wordTable(words)): number {
  const first = firstOccurrences(table.ids, n);
  const covered = new Uint8Array(words.length);
  for (let i = 0; i < first.length; i++) if (first[i] !== i) covered.fill(1, i, i + n);
  let chars = 0;
  for (let i = 0; i < words.length; i++) if (covered[i]) chars += table.lengths[i]!;
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
      const table = wordTable(words);
      for (const [n, frac] of cfg.top_n_grams) {
        if (words.length < n) continue;
        if (topNGramChars(words, n, table) / total > frac) return drop(`top_${n}_gram`);
      }
      for (const [n, frac] of cfg.dup_n_grams) {
        if (words.length < n) continue;
        if (duplicateNGramChars(words, n, table) / total > frac) return drop(`duplicated_${n}_n_grams`);
      }
      return KEEP;
    },
  };
}
