// Builds the configured text filters in their fixed order: cheap length checks first, then language,
// the Gopher quality and repetition rules, C4, FineWeb, and the blocklist (FineWeb's order, plus ours).
import type { FiltersConfig } from "../config.js";
import { blocklistFilter } from "./blocklist.js";
import { c4Filter } from "./c4.js";
import type { TextFilter } from "./filter.js";
import { finewebFilter } from "./fineweb.js";
import { gopherQualityFilter } from "./gopher-quality.js";
import { gopherRepetitionFilter } from "./gopher-repetition.js";
import { languageFilter } from "./language.js";
import { lengthFilter } from "./length.js";

/** Filter names in the order they run (the report's funnel uses it too). */
export const FILTER_ORDER = ["length", "language", "gopher_repetition", "gopher_quality", "c4", "fineweb", "blocklist"] as const;

export async function buildFilters(cfg: FiltersConfig): Promise<TextFilter[]> {
  const out: TextFilter[] = [];
  if (cfg.length) out.push(lengthFilter(cfg.length));
  if (cfg.language) out.push(await languageFilter(cfg.language));
  if (cfg.gopher_repetition) out.push(gopherRepetitionFilter(cfg.gopher_repetition));
  if (cfg.gopher_quality) out.push(gopherQualityFilter(cfg.gopher_quality));
  if (cfg.c4) out.push(c4Filter(cfg.c4));
  if (cfg.fineweb) out.push(finewebFilter(cfg.fineweb));
  if (cfg.blocklist) out.push(blocklistFilter(cfg.blocklist));
  return out;
}

export type { TextFilter, FilterResult } from "./filter.js";
