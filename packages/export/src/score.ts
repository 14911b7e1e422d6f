// Our side of verify: the project's own forward pass (@owntune/model) scoring token ids on weights
// from any TensorSource — for verify, the GGUF's own dequantized weights — with the adapter applied
// through the model's LoRA path.
import * as tf from "@tensorflow/tfjs";
import { disposeLora, forwardLogits, initBackend, loadGemma4, loraTensorsFrom, scoreIds, type Ablation } from "@owntune/model";
import { withGgmlActivations } from "./ggml-activations.js";
import type { ScoreFn } from "./verify.js";

/**
 * A ScoreFn over our forward pass; `ablate` (TEST-ONLY) breaks one model feature, for the
 * discrimination test. When the weights come from a GGUF (they carry ggml types), activations are
 * rounded before each base-weight product as ggml's CPU matmul rounds them (ggml-activations.ts).
 */
export function forwardScore(options: { ablate?: Ablation } = {}): ScoreFn {
  return async (config, weights, adapter, ids) => {
    await initBackend();
    const loaded = await loadGemma4(config, weights);
    const typed = weights as { ggmlType?: (name: string) => number };
    const model = typeof typed.ggmlType === "function" ? withGgmlActivations(loaded, (n) => typed.ggmlType!(n)) : loaded;
    const lora = adapter ? loraTensorsFrom(adapter.pairs, adapter.scale) : undefined;
    try {
      return ids.map((seq) => {
        const logprobs = scoreIds(model, seq, { lora, ablate: options.ablate }).logprobs;
        // The largest |logit| before the soft-cap (recovered by inverting it): ggml's rounding error grows with it.
        const logits = forwardLogits(model, { ids: [seq] }, { lora, ablate: options.ablate });
        const capped = tf.tidy(() => tf.max(tf.abs(logits)).dataSync()[0]!);
        logits.dispose();
        const cap = options.ablate?.noSoftcap ? null : config.final_logit_softcapping;
        const maxLogit = cap === null ? capped : cap * Math.atanh(Math.min(capped / cap, 1 - 1e-7));
        return { logprobs, maxLogit };
      });
    } finally {
      if (lora) disposeLora(lora);
      loaded.dispose();
    }
  };
}

/** Verify's default scorer: the forward pass as it is. */
export const ourScore: ScoreFn = forwardScore();
