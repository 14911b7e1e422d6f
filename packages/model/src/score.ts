// Scoring: per-token log-probabilities and mean NLL of a token sequence under our forward pass — what
// `owntune score` prints and what the exporter's verify compares with llama.cpp. Long sequences go
// through the KV cache in chunks, so memory stays bounded by the chunk, not the sequence.
import type { ForwardOptions } from "./gemma4.js";
import { KvCache } from "./kv-cache.js";
import { nextTokenLogprobs } from "./loss.js";
import type { Gemma4Model } from "./model.js";

/** Tokens per forward step when scoring. */
export const DEFAULT_SCORE_CHUNK = 512;

export interface ScoreResult {
  ids: number[];
  /** logprobs[t] = log p(ids[t+1] | ids[..t]): ids.length − 1 values. */
  logprobs: number[];
  /** Mean of −logprobs (NaN for a single token: nothing is predicted). */
  nll: number;
}

export interface ScoreOptions extends Pick<ForwardOptions, "lora" | "ablate"> {
  /** Tokens per forward step (default DEFAULT_SCORE_CHUNK). */
  chunk?: number;
}

/** Scores one sequence (BOS included, as the model saw it in training). */
export function scoreIds(model: Gemma4Model, ids: readonly number[], options: ScoreOptions = {}): ScoreResult {
  if (ids.length === 0) throw new RangeError("score: empty sequence");
  const chunk = options.chunk ?? DEFAULT_SCORE_CHUNK;
  const cache = new KvCache(model.config, 1);
  const logprobs: number[] = [];
  try {
    for (let t0 = 0; t0 < ids.length - 1; t0 += chunk) {
      const part = ids.slice(t0, Math.min(t0 + chunk, ids.length - 1)); // the last token predicts nothing
      const lp = nextTokenLogprobs(
        model,
        { ids: [part] },
        { cache, lora: options.lora, ablate: options.ablate, following: [ids[t0 + part.length]!] },
      );
      for (const v of lp) logprobs.push(v);
    }
  } finally {
    cache.dispose();
  }
  const nll = logprobs.length === 0 ? Number.NaN : -logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
  return { ids: [...ids], logprobs, nll };
}
