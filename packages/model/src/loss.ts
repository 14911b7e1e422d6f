// The training loss and per-token log-probabilities over the forward pass: next-token cross-entropy on
// packed rows with a loss mask, through the tiled head (lm-head.ts), so [B, T, V] logits never exist.
import * as tf from "@tensorflow/tfjs";
import { softcapOf } from "./ablation.js";
import { batchShape, sameSegment, type LossBatch, type TokenBatch } from "./batch.js";
import { forwardHidden, type ForwardOptions } from "./gemma4.js";
import type { Gemma4Model } from "./model.js";

/**
 * Next-token cross-entropy: token t (t ≥ 1) is predicted from tokens < t and counts when
 * lossMask[t] = 1 and it is in the same segment as token t−1. "mean" (default) divides by the number
 * of counted tokens (0 when there are none), "sum" does not (for gradient accumulation). The vocabulary
 * is processed in tiles, forward and backward, so [B, T, V] logits never exist.
 */
export function lmLoss(model: Gemma4Model, batch: LossBatch, options: ForwardOptions & { reduction?: "mean" | "sum" } = {}): tf.Scalar {
  const { B, T } = batchShape(batch);
  const { targets, weights, count } = lossTargets(batch, B, T);
  return tf.tidy(() => {
    const h = forwardHidden(model, batch, options);
    const total = model.embedding.nllSum(h.reshape([B * T, -1]) as tf.Tensor2D, targets, weights, softcapOf(model, options.ablate));
    return options.reduction === "sum" || count === 0 ? total : tf.div(total, count);
  });
}

/** How many tokens lmLoss averages over. */
export function countLossTokens(batch: LossBatch): number {
  const { B, T } = batchShape(batch);
  return lossTargets(batch, B, T).count;
}

export interface NextTokenOptions extends ForwardOptions {
  /** Per row, the id that follows its last token (scoring a long sequence in chunks); absent or −1: none. */
  following?: ArrayLike<number>;
  /** Sees the final hidden states [B·T, H] before they are freed (e.g. to measure the logits' scale). */
  withHidden?: (h: tf.Tensor2D) => void;
}

/**
 * log p(next token) at every position, flat [B·T] from one forward pass: position t of row b scores
 * ids[b][t+1] (at the row's last position, its `following` id); NaN where no token of the same document
 * follows. The loop every scorer shares (tokenLogprobs, scoreIds, the exporter's verify). No gradient.
 */
export function nextTokenLogprobs(model: Gemma4Model, batch: TokenBatch, options: NextTokenOptions = {}): Float32Array {
  const { B, T } = batchShape(batch);
  const targets = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      if (sameSegment(batch, b, t)) targets[b * T + t] = batch.ids[b]![t + 1]!;
    }
    targets[b * T + T - 1] = options.following?.[b] ?? -1;
  }
  const h = forwardHidden(model, batch, options);
  const h2 = h.reshape([B * T, -1]) as tf.Tensor2D; // [B, T, H] → [B·T, H]
  try {
    const lp = model.embedding.targetLogprobs(h2, targets, softcapOf(model, options.ablate)); // (not inside tf.tidy: it would walk the returned array)
    options.withHidden?.(h2);
    return lp;
  } finally {
    tf.dispose([h, h2]);
  }
}

/**
 * log p(ids[t] | ids[<t]) for every row: [B][T] with NaN at t = 0 and where a token starts a new
 * segment (nothing predicts it). No gradient.
 */
export function tokenLogprobs(model: Gemma4Model, batch: TokenBatch, options: ForwardOptions = {}): Float32Array[] {
  const { B, T } = batchShape(batch);
  const lp = nextTokenLogprobs(model, batch, options);
  return Array.from({ length: B }, (_, b) => {
    const row = new Float32Array(T).fill(Number.NaN);
    row.set(lp.subarray(b * T, b * T + T - 1), 1); // the prediction made at t scores token t+1
    return row;
  });
}

function lossTargets(batch: LossBatch, B: number, T: number): { targets: Int32Array; weights: Float32Array; count: number } {
  const targets = new Int32Array(B * T);
  const weights = new Float32Array(B * T);
  let count = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const m = batch.lossMask[b]![t + 1]!;
      if (m !== 0 && sameSegment(batch, b, t)) {
        targets[b * T + t] = batch.ids[b]![t + 1]!;
        weights[b * T + t] = m;
        count += 1;
      }
    }
  }
  return { targets, weights, count };
}
