// When to recompute activations (autograd.ts `recomputed`) per decoder layer: a training step then holds
// every layer's input plus one layer's activations at a time, instead of every layer's activations.
import { totalmem } from "node:os";
import type { Gemma4Config, LayerSpec } from "./config.js";

/**
 * Share of the machine's memory that a training step's activations may take before `recompute: "auto"`
 * turns recomputation on (gemma4-tiny and ~100M models at T = 512 stay well under it; E2B does not).
 */
export const RECOMPUTE_MEMORY_SHARE = 1 / 16;

/**
 * Whether `auto` recomputes: the float32 activations a tape keeps per token and layer, estimated from
 * what the ops save (norm inputs, projections, the MLP's gate/up/product, attention probabilities and
 * its products: 16·H + 4·F + Nq·(2·S + 4·d) with S the keys a query sees), over B·T tokens and every layer.
 */
export function recomputeByDefault(
  model: { config: Gemma4Config; layers: readonly LayerSpec[] },
  B: number,
  T: number,
  totalMemory = totalmem(),
): boolean {
  const H = model.config.hidden_size;
  let perToken = 0;
  for (const l of model.layers) {
    const S = l.sliding ? Math.min(T, model.config.sliding_window) : T;
    perToken += 16 * H + 4 * l.mlpWidth + l.numHeads * (2 * S + 4 * l.headDim);
  }
  return 4 * B * T * perToken > RECOMPUTE_MEMORY_SHARE * totalMemory;
}
