// Decontamination: drop training examples that share a long word n-gram with an evaluation set
// (Brown et al. 2020, GPT-3 paper App. C: 13-grams of lowercased words, punctuation ignored).
import { hashString53 } from "@owntune/core";
import { simplifyText } from "./minhash.js";

function words(text: string): string[] {
  const s = simplifyText(text);
  return s === "" ? [] : s.split(" ");
}

/** 53-bit hashes of every word n-gram of `text` (a text shorter than n contributes itself whole). */
export function nGramHashes(text: string, n: number): number[] {
  const w = words(text);
  if (w.length === 0) return [];
  if (w.length < n) return [hashString53(w.join(" "))];
  const out: number[] = [];
  for (let i = 0; i + n <= w.length; i++) out.push(hashString53(w.slice(i, i + n).join(" ")));
  return out;
}

/** Builds the set of evaluation n-grams from the texts of the evaluation rows. */
export function buildContaminationIndex(evalTexts: Iterable<string>, n: number): Set<number> {
  const set = new Set<number>();
  for (const t of evalTexts) for (const h of nGramHashes(t, n)) set.add(h);
  return set;
}

/** True when `text` has a word n-gram that also occurs in the evaluation set. */
export function isContaminated(text: string, index: ReadonlySet<number>, n: number): boolean {
  const w = words(text);
  if (w.length < n) return false; // too short to share a full n-gram
  for (let i = 0; i + n <= w.length; i++) if (index.has(hashString53(w.slice(i, i + n).join(" ")))) return true;
  return false;
}
