// Our side of verify: the project's own forward pass (@owntune/model) scoring token ids on weights
// from any TensorSource — for verify, the GGUF's own dequantized weights — with the adapter applied
// through the model's LoRA path.
import { disposeLora, initBackend, loadGemma4, loraTensorsFrom, scoreIds, type Ablation } from "@owntune/model";
import type { ScoreFn } from "./verify.js";

/** A ScoreFn over our forward pass; `ablate` (TEST-ONLY) breaks one model feature, for the discrimination test. */
export function forwardScore(options: { ablate?: Ablation } = {}): ScoreFn {
  return async (config, weights, adapter, ids) => {
    await initBackend();
    const model = await loadGemma4(config, weights);
    const lora = adapter ? loraTensorsFrom(adapter.pairs, adapter.scale) : undefined;
    try {
      return ids.map((seq) => scoreIds(model, seq, { lora, ablate: options.ablate }).logprobs);
    } finally {
      if (lora) disposeLora(lora);
      model.dispose();
    }
  };
}

/** Verify's default scorer: the forward pass as it is. */
export const ourScore: ScoreFn = forwardScore();
