// TEST-ONLY single-feature breakage of the Gemma 4 forward pass, for the exporter's verification
// (spec/gemma4.md §10): each switch makes one feature wrong, and llama.cpp must disagree with each.
import type { Gemma4Model } from "./model.js";

/**
 * TEST-ONLY switches that each break one Gemma 4 feature, so the exporter's verification can show that
 * llama.cpp disagrees with every single-feature mistake (spec §10). Never set them for real use.
 */
export interface Ablation {
  /** Full layers use default RoPE (every pair rotates, θ = full-layer θ) instead of proportional. */
  fullLayersDefaultRope?: boolean;
  /** Proportional RoPE exponent over the rotated dims (2j / (2·pairs)) instead of the full head width. */
  ropeExponentOverRotatedDims?: boolean;
  /** Sliding layers admit q − k ≤ W (W+1 keys) instead of q − k < W. */
  slidingWindowOffByOne?: boolean;
  /** No per-layer embeddings at all (the PLE step is skipped). */
  noPle?: boolean;
  /** V is not RMS-normalized. */
  noVNorm?: boolean;
  /** On k=v layers, V is taken from K after k_norm instead of the raw K projection. */
  vFromNormedK?: boolean;
  /** The layer scalar multiplies the stream before the PLE step instead of after it. */
  layerScalarBeforePle?: boolean;
  /** No final logit soft-capping. */
  noSoftcap?: boolean;
  /** Query head h reads KV head h mod Nkv instead of floor(h / (Nq/Nkv)). */
  wrongGqaMapping?: boolean;
}

/** Every ablation flag, for tests that loop over them. */
export const ABLATIONS: ReadonlyArray<keyof Ablation> = [
  "fullLayersDefaultRope",
  "ropeExponentOverRotatedDims",
  "slidingWindowOffByOne",
  "noPle",
  "noVNorm",
  "vFromNormedK",
  "layerScalarBeforePle",
  "noSoftcap",
  "wrongGqaMapping",
];

/** The final logit soft-cap, or null when the ablation removes it. */
export function softcapOf(model: Gemma4Model, ablate: Ablation | undefined): number | null {
  return ablate?.noSoftcap ? null : model.config.final_logit_softcapping;
}
