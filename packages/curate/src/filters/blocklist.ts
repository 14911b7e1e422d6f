// A regular-expression and word blocklist: any match drops the example.
import type { z } from "zod";
import { UserError } from "@owntune/core";
import type { blocklistSchema } from "../config.js";
import { drop, KEEP, type TextFilter } from "./filter.js";

export type BlocklistConfig = z.output<typeof blocklistSchema>;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function blocklistFilter(cfg: BlocklistConfig): TextFilter {
  const flags = cfg.case_insensitive ? "iu" : "u";
  const patterns = cfg.patterns.map((p, i) => {
    try {
      return new RegExp(p, flags);
    } catch (e) {
      throw new UserError(`invalid regular expression (${(e as Error).message})`, { field: `filters.blocklist.patterns[${i}]` });
    }
  });
  // Whole words: not preceded or followed by a letter, digit or underscore (any script).
  const words =
    cfg.words.length > 0
      ? new RegExp(`(?<![\\p{L}\\p{N}_])(?:${cfg.words.map(escapeRegExp).join("|")})(?![\\p{L}\\p{N}_])`, flags)
      : undefined;
  return {
    name: "blocklist",
    apply(text) {
      if (words?.test(text)) return drop("word");
      for (const re of patterns) if (re.test(text)) return drop("pattern");
      return KEEP;
    },
  };
}
