// A LoRA adapter in memory (PEFT's layout) and its tensors for the forward pass. The model knows only
// the `LoraTensors` seam of its `linear`; everything about adapters lives in this package.
// Reference: huggingface/peft tuners/lora/layer.py (lora_A [r, in], lora_B [out, r], scaling).
import * as tf from "@tensorflow/tfjs";
import type { LoraLayers, LoraTensors } from "@owntune/model";

/** The linear layers LoRA can target, by their PEFT module names (the last part of the HF name). */
export const LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;
export type LoraTargetModule = (typeof LORA_TARGET_MODULES)[number];

/**
 * One LoRA pair on a base linear `W [out, in]` in PEFT's layout: `a` is lora_A `[rank, in]`,
 * `b` is lora_B `[out, rank]`, row-major. The layer computes `y = x·Wᵀ + scale·(x·aᵀ)·bᵀ`.
 */
export interface LoraPair {
  rank: number;
  inFeatures: number;
  outFeatures: number;
  a: Float32Array;
  b: Float32Array;
}

/**
 * A LoRA adapter in memory: pairs keyed by the HF module name without prefix
 * (`layers.3.self_attn.q_proj`), and the scale PEFT applies (`alpha/r`, or `alpha/√r` with rsLoRA).
 */
export interface AdapterWeights {
  scale: number;
  pairs: Map<string, LoraPair>;
}

/** LoRA tensors for inference from an in-memory adapter (PEFT layout kept: A [r, in], B [out, r]). */
export function loraTensorsFrom(pairs: ReadonlyMap<string, LoraPair>, scale: number): Map<string, LoraTensors> {
  const out = new Map<string, LoraTensors>();
  for (const [name, p] of pairs) {
    out.set(name, { a: tf.tensor2d(p.a, [p.rank, p.inFeatures]), b: tf.tensor2d(p.b, [p.outFeatures, p.rank]), scale });
  }
  return out;
}

/** Disposes the tensors of LoRA layers made by `loraTensorsFrom` (not a trainer's variables). */
export function disposeLora(lora: LoraLayers): void {
  for (const p of lora.values()) {
    p.a.dispose();
    p.b.dispose();
  }
}
