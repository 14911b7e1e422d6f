// What a text filter is: a name, and a check that keeps a text (optionally rewriting it, as C4's line
// filter does) or drops it with a reason. Shared text helpers live here too.

/** Keep (with optional rewritten text) or drop with a reason key such as `gopher_short_doc`. */
export type FilterResult = { keep: true; text?: string } | { keep: false; reason: string };

export interface TextFilter {
  /** Config key, e.g. `gopher_quality`; the report's funnel groups drops by it. */
  readonly name: string;
  /** `rewrite` says whether the filter may change the text (only plain-text examples take it). */
  apply(text: string, rewrite: boolean): FilterResult;
}

export const KEEP: FilterResult = { keep: true };
export const drop = (reason: string): FilterResult => ({ keep: false, reason });

/** Python's `str.splitlines()`: splits on every line boundary, no trailing empty piece. */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const parts = text.split(/\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]/);
  if (parts.length > 1 && parts[parts.length - 1] === "" && /(\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029])$/.test(text)) parts.pop();
  return parts;
}

// A word: letters/digits/marks joined by inner apostrophes, hyphens or dots ("don't", "e.g", "3.14");
// else a run of dots (NLTK keeps "..." whole) or any single other non-space character.
export const WORD_PATTERN = /[\p{L}\p{M}\p{N}_]+(?:['’.\-][\p{L}\p{M}\p{N}_]+)*|\.+|…|[^\s\p{L}\p{M}\p{N}_]/u.source;
const WORD = new RegExp(WORD_PATTERN, "gu");

/**
 * Word tokens in the manner of NLTK's word_tokenize (which datatrove's English filters use):
 * punctuation marks are tokens of their own. An approximation: NLTK also splits "n't" and "'s".
 */
export function splitWords(text: string): string[] {
  return text.match(WORD) ?? [];
}

const PUNCT_OR_SYMBOL = /^[\p{P}\p{S}]+$/u;
/** True for tokens made only of punctuation/symbols (datatrove's PUNCTUATION_SET check). */
export function isSymbolWord(w: string): boolean {
  return PUNCT_OR_SYMBOL.test(w);
}

const ALPHA = /\p{L}/u;
/** Python's `any(c.isalpha() for c in w)`. */
export function hasAlpha(w: string): boolean {
  return ALPHA.test(w);
}

/** Length in code points, as Python's `len` counts. */
export function codePointLength(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xdc00 && c <= 0xdfff && i > 0) {
      const p = s.charCodeAt(i - 1);
      if (p >= 0xd800 && p <= 0xdbff) n--;
    }
  }
  return n;
}

/** Non-overlapping occurrences of `needle`, as Python's `str.count`. */
export function countOccurrences(text: string, needle: string): number {
  let n = 0;
  for (let i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** datatrove's find_duplicates: (elements seen before, their total length in code points). */
export function findDuplicates(items: readonly string[]): { count: number; chars: number } {
  const seen = new Set<string>();
  let count = 0;
  let chars = 0;
  for (const x of items) {
    if (seen.has(x)) {
      count++;
      chars += codePointLength(x);
    } else seen.add(x);
  }
  return { count, chars };
}
