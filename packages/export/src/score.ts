// Our side of verify: the project's own forward pass (@owntune/model) scoring token ids on weights
// from any TensorSource — for verify, the GGUF's own dequantized weights, with ggml's CPU rounding
// copied in (ggml-activations.ts) — with the adapter applied through the model's LoRA path.
import * as tf from "@tensorflow/tfjs";
import { initBackend, loadGemma4, nextTokenLogprobs, type Ablation, type Gemma4Config, type TensorSource } from "@owntune/model";
import { disposeLora, loraTensorsFrom, type AdapterWeights } from "@owntune/lora";
import { withGgmlActivations, type GgmlArithmetic } from "./ggml-activations.js";
import type { ScoreFn, ScoreOutput } from "./verify.js";

/** Rows of [rows, vocab] logits formed at once when measuring the logit scale (32 × 262,144 floats = 32 MiB). */
const LOGIT_SCALE_ROWS = 32;

/** A loaded model that scores token ids; `ablate` (TEST-ONLY) breaks one model feature. */
export interface Scorer {
  score(ids: readonly number[][], ablate?: Ablation): ScoreOutput[];
  dispose(): void;
}

/**
 * Loads our forward pass on `weights` once. When the weights come from a GGUF (they carry ggml types),
 * ggml's CPU arithmetic is copied where it rounds (`ggml` picks which parts; all by default). Each
 * sequence is one forward pass; the head gives the log-probs (tiled over the vocabulary) and the
 * logit scale.
 */
export async function loadScorer(
  config: Gemma4Config,
  weights: TensorSource,
  adapter: AdapterWeights | undefined,
  options: { ggml?: GgmlArithmetic } = {},
): Promise<Scorer> {
  await initBackend();
  const loaded = await loadGemma4(config, weights);
  const typed = weights as { ggmlType?: (name: string) => number };
  const model = typeof typed.ggmlType === "function" ? withGgmlActivations(loaded, (n) => typed.ggmlType!(n), options.ggml) : loaded;
  const lora = adapter ? loraTensorsFrom(adapter.pairs, adapter.scale) : undefined;
  return {
    score: (ids, ablate) =>
      ids.map((seq) => {
        const T = seq.length;
        // The logit scale: the largest |logit| before the soft-cap, a block of rows at a time.
        let maxLogit = 0;
        const measureScale = (h: tf.Tensor2D): void => {
          for (let t0 = 0; t0 < T; t0 += LOGIT_SCALE_ROWS) {
            const rows = Math.min(LOGIT_SCALE_ROWS, T - t0);
            maxLogit = Math.max(
              maxLogit,
              tf.tidy(() => tf.max(tf.abs(model.embedding.logits(tf.slice(h, [t0, 0], [rows, -1]), null))).dataSync()[0]!),
            );
          }
        };
        const lp = nextTokenLogprobs(model, { ids: [seq] }, { lora, ablate, withHidden: measureScale });
        const logprobs = Array.from(lp.subarray(0, T - 1)); // the last token predicts nothing
        return { logprobs, maxLogit };
      }),
    dispose() {
      if (lora) disposeLora(lora);
      loaded.dispose();
    },
  };
}

/** A ScoreFn over our forward pass (loads the model for each call); `ablate` is TEST-ONLY. */
export function forwardScore(options: { ablate?: Ablation; ggml?: GgmlArithmetic } = {}): ScoreFn {
  return async (config, weights, adapter, ids) => {
    const scorer = await loadScorer(config, weights, adapter, options);
    try {
      return scorer.score(ids, options.ablate);
    } finally {
      scorer.dispose();
    }
  };
}

/** Verify's default scorer: the forward pass as it is. */
export const ourScore: ScoreFn = forwardScore();
