// FineWeb rules: Penedo et al. 2024, "The FineWeb Datasets" §3.3 (arXiv:2406.17557), with the defaults
// of datatrove's FineWebQualityFilter, which produced FineWeb (examples/fineweb.py). The paper's text
// gives 0.1 for the duplicated-line character fraction; the code that built the dataset uses 0.01.
import type { z } from "zod";
import type { finewebSchema } from "../config.js";
import { codePointLength, drop, findDuplicates, KEEP, splitWords, type TextFilter } from "./filter.js";

export type FineWebConfig = z.output<typeof finewebSchema>;

const STOP_CHARS = [".", "'", '"', "!", "?"];

export function finewebFilter(cfg: FineWebConfig): TextFilter {
  return {
    name: "fineweb",
    apply(text) {
      const lines = text.split("\n");
      // Share of lines ending in punctuation must exceed 0.12.
      let ratio = lines.filter((l) => STOP_CHARS.some((c) => l.endsWith(c))).length / lines.length;
      if (ratio <= cfg.line_punct_thr && !(ratio === 0 && cfg.line_punct_exclude_zero)) return drop("line_punct_ratio");
      // Share of lines of at most 30 characters must stay below 0.67.
      ratio = lines.filter((l) => codePointLength(l) <= cfg.short_line_length).length / lines.length;
      if (ratio >= cfg.short_line_thr) return drop("short_line_ratio");
      // Characters in duplicated (non-empty) lines, over all characters but newlines.
      const nonEmpty = lines.filter((l) => l.trim() !== "");
      const denom = codePointLength(text.replaceAll("\n", ""));
      ratio = denom === 0 ? 0 : findDuplicates(nonEmpty).chars / denom;
      if (ratio >= cfg.char_duplicates_ratio) return drop("char_dup_ratio");
      // Newlines per word above 0.3 means a list, not prose.
      const words = splitWords(text);
      const newlines = lines.length - 1;
      if (words.length === 0 || newlines / words.length > cfg.new_line_ratio) return drop("list_ratio");
      return KEEP;
    },
  };
}
