// The two dedup steps of an in-memory run, over the kept examples in input order: exact (the first
// of each exact key stays, as datatrove's ExactDedup) and MinHash-LSH near dedup (the first member of
// each connected cluster stays). merge-sql/ holds the same two steps as SQL for merged runs.
import type { CurateConfig } from "./config.js";
import type { CurateCounters } from "./counters.js";
import { LshClusters, lshShape } from "./dedup/minhash.js";
import type { ProcessedExample } from "./read-step.js";

/** Near-dedup drops come after every per-row drop (the report lists stages in first-drop order). */
export const NEAR_DEDUP_AT = Number.MAX_SAFE_INTEGER - 1;
/** Sampling drops come last. */
export const SAMPLING_AT = Number.MAX_SAFE_INTEGER;

/** Drops every example whose exact key an earlier one has; counts truncation among the survivors. */
export function exactDedupStep(docs: readonly ProcessedExample[], counters: CurateCounters): ProcessedExample[] {
  const seen = new Set<string>();
  const out: ProcessedExample[] = [];
  for (const d of docs) {
    if (d.exactKey !== undefined) {
      if (seen.has(d.exactKey)) {
        counters.drop("dedup_exact", "exact_duplicate", d.id, d.preview, `${d.file}:${d.line}`);
        continue;
      }
      seen.add(d.exactKey);
    }
    if (d.truncated) counters.truncated++;
    counters.boundaryMerges += d.boundaryMerges;
    out.push(d);
  }
  return out;
}

/** Drops every example but the first of each near-duplicate cluster (examples sharing an LSH band key, transitively). */
export function nearDedupStep(docs: readonly ProcessedExample[], cfg: CurateConfig, counters: CurateCounters): readonly ProcessedExample[] {
  const near = cfg.dedup.near;
  if (!near) return docs;
  const { bands, rows } = lshShape(near);
  const lsh = new LshClusters(bands, rows);
  for (const d of docs) {
    if (d.bandKeys) lsh.add(d.id, d.bandKeys);
    d.bandKeys = undefined; // no longer needed
  }
  const byId = new Map(docs.map((d) => [d.id, d]));
  const kept: ProcessedExample[] = [];
  for (const d of docs) {
    if (lsh.isKept(d.id)) kept.push(d);
    else {
      const rep = byId.get(lsh.representative(d.id));
      counters.drop(
        "dedup_near",
        "near_duplicate",
        NEAR_DEDUP_AT,
        d.preview,
        rep ? `near-duplicate of: ${rep.preview.slice(0, 120)}` : undefined,
      );
    }
  }
  return kept;
}
