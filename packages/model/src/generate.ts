// Autoregressive generation with the hybrid KV cache: the prompt is prefilled in chunks, then one token
// per step, greedy or sampled (temperature, top-k, top-p, seeded), until an end-of-generation id or the
// token budget. Reference: HF `generate` sampling order (temperature → top-k → top-p), mlx-lm generate.
import * as tf from "@tensorflow/tfjs";
import { randomInt } from "node:crypto";
import { seededRandom } from "@owntune/core";
import { lastTokenLogits, forwardHidden, type ForwardOptions } from "./gemma4.js";
import { KvCache } from "./kv-cache.js";
import type { Gemma4Model } from "./model.js";

/** Prompt tokens per prefill step: bounds the [chunk, keys] attention tiles. */
export const DEFAULT_PREFILL_CHUNK = 256;

export interface SamplingOptions {
  /** 0 (default) = greedy; otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or absent = all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or absent = all). */
  topP?: number;
  /** Seed of the sampling stream (absent: a random seed, reported in the result). */
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions, Pick<ForwardOptions, "lora"> {
  /** Most tokens to generate. */
  maxTokens: number;
  /** Ids that end generation (the tokenizer's endOfGenerationIds); the stop id is included in the output. */
  stopIds?: readonly number[];
  prefillChunk?: number;
  /** Called with each new token; return false to stop. */
  onToken?: (id: number) => boolean | void;
}

export interface GenerateResult {
  /** Generated ids (not the prompt). */
  ids: number[];
  /** "context-length": prompt + generated tokens reached the model's max_position_embeddings. */
  stoppedBy: "stop-id" | "max-tokens" | "callback" | "context-length";
  /** The seed used when sampling (undefined when greedy). */
  seed: number | undefined;
  promptTokens: number;
  prefillSeconds: number;
  decodeSeconds: number;
}

/** Generates a continuation of `prompt` (token ids, BOS included). Yields to the event loop between tokens. */
export async function generate(model: Gemma4Model, prompt: readonly number[], options: GenerateOptions): Promise<GenerateResult> {
  if (prompt.length === 0) throw new RangeError("generate: empty prompt (it needs at least <bos>)");
  const context = model.config.max_position_embeddings;
  if (prompt.length > context)
    throw new RangeError(`generate: the prompt has ${prompt.length} tokens, more than the model's context of ${context}`);
  const greedy = !options.temperature || options.temperature <= 0;
  const seed = greedy ? undefined : (options.seed ?? randomInt(2 ** 31));
  const rng = seed === undefined ? undefined : seededRandom(seed, "generate");
  const stop = new Set(options.stopIds ?? []);
  const chunk = options.prefillChunk ?? DEFAULT_PREFILL_CHUNK;
  const cache = new KvCache(model.config, 1);
  const ids: number[] = [];
  let stoppedBy: GenerateResult["stoppedBy"] = "max-tokens";
  const t0 = performance.now();
  let t1 = t0;
  try {
    let logits: Float32Array | undefined;
    for (let p0 = 0; p0 < prompt.length; p0 += chunk) {
      const part = prompt.slice(p0, p0 + chunk);
      if (p0 + chunk >= prompt.length) {
        logits = readLogits(lastTokenLogits(model, { ids: [part] }, { cache, lora: options.lora }));
      } else {
        forwardHidden(model, { ids: [part] }, { cache, lora: options.lora }).dispose();
      }
      await yieldToEventLoop();
    }
    t1 = performance.now();
    for (let n = 0; n < options.maxTokens; n++) {
      // Each new token takes the next position; past max_position_embeddings the model was never trained.
      if (prompt.length + n >= context) {
        stoppedBy = "context-length";
        break;
      }
      const id = greedy ? argmax(logits!) : sample(logits!, options, rng!);
      ids.push(id);
      if (options.onToken?.(id) === false) {
        stoppedBy = "callback";
        break;
      }
      if (stop.has(id)) {
        stoppedBy = "stop-id";
        break;
      }
      if (n + 1 < options.maxTokens && prompt.length + n + 1 < context)
        logits = readLogits(lastTokenLogits(model, { ids: [[id]] }, { cache, lora: options.lora }));
      await yieldToEventLoop();
    }
  } finally {
    cache.dispose();
  }
  const t2 = performance.now();
  return { ids, stoppedBy, seed, promptTokens: prompt.length, prefillSeconds: (t1 - t0) / 1000, decodeSeconds: (t2 - t1) / 1000 };
}

function readLogits(t: tf.Tensor2D): Float32Array {
  const v = t.dataSync() as Float32Array;
  t.dispose();
  return v;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Index of the largest logit (the lowest index on ties). */
export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  return best;
}

/**
 * Draws a token: logits / temperature, keep the top-k, keep the top-p nucleus, renormalize, sample with
 * `rng` (uniform [0, 1)). Computed in float64.
 */
export function sample(logits: ArrayLike<number>, options: SamplingOptions, rng: () => number): number {
  const temperature = options.temperature ?? 1;
  if (temperature <= 0) return argmax(logits);
  const V = logits.length;
  const k = options.topK && options.topK > 0 ? Math.min(options.topK, V) : V;
  const p = options.topP ?? 1;
  // Without top-k/top-p, order does not matter: skip sorting the vocabulary.
  const candidates = k === V && p >= 1 ? Array.from({ length: V }, (_, i) => i) : topKIndices(logits, k); // most likely first
  const m = k === V && p >= 1 ? logits[argmax(logits)]! : logits[candidates[0]!]!;
  const weights = candidates.map((i) => Math.exp((logits[i]! - m) / temperature));
  let total = weights.reduce((a, b) => a + b, 0);
  let keep = candidates.length;
  if (p < 1) {
    let cum = 0;
    for (let j = 0; j < candidates.length; j++) {
      cum += weights[j]! / total;
      if (cum >= p) {
        keep = j + 1;
        break;
      }
    }
    total = weights.slice(0, keep).reduce((a, b) => a + b, 0);
  }
  let u = rng() * total;
  for (let j = 0; j < keep; j++) {
    u -= weights[j]!;
    if (u < 0) return candidates[j]!;
  }
  return candidates[keep - 1]!;
}

/** Indices of the k largest values, largest first (ties: lower index first). */
function topKIndices(values: ArrayLike<number>, k: number): number[] {
  const order = (a: number, b: number) => values[b]! - values[a]! || a - b;
  if (k >= values.length) return Array.from({ length: values.length }, (_, i) => i).sort(order);
  // Keep a sorted buffer of the best k; a new value enters only if it beats the worst kept.
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (best.length === k && order(i, best[k - 1]!) >= 0) continue;
    let lo = 0;
    let hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (order(best[mid]!, i) <= 0) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}
