// Seeded random LoRA adapters with non-zero B (unlike a fresh PEFT init), for tests that need an
// adapter to change the model's outputs measurably.
import { fillNormal, seededRandom } from "@owntune/core";
import { expectedTensors, type Gemma4Config } from "@owntune/model";
import type { AdapterWeights, LoraPair, LoraTargetModule } from "./adapter.js";

export interface RandomAdapterOptions {
  rank?: number;
  alpha?: number;
  targets?: readonly LoraTargetModule[];
  seed?: number;
  /** Multiplies B's standard deviation (1 gives an update about as large as the base weight's output). */
  strength?: number;
}

/**
 * An adapter on every `targets` linear of `config` that exists (KV-shared layers have no k/v):
 * A ~ N(0, 1/in), B ~ N(0, strength²/r), so the update scale·B·A·x has about strength·scale times
 * the size of the base output W·x (whose weights are N(0, 1/in)).
 */
export function randomAdapter(config: Gemma4Config, options: RandomAdapterOptions = {}): AdapterWeights {
  const { rank = 4, alpha = 8, targets = ["q_proj", "v_proj", "o_proj", "down_proj"], seed = 0, strength = 0.5 } = options;
  const pairs = new Map<string, LoraPair>();
  for (const t of expectedTensors(config)) {
    const m = /^(layers\.\d+\.(?:self_attn|mlp)\.(\w+))\.weight$/.exec(t.name);
    if (!m || !targets.includes(m[2] as LoraTargetModule)) continue;
    const [out, inn] = t.shape as [number, number];
    const a = fillNormal(new Float32Array(rank * inn), seededRandom(seed, `${m[1]}.lora_A`), 0, 1 / Math.sqrt(inn));
    const b = fillNormal(new Float32Array(out * rank), seededRandom(seed, `${m[1]}.lora_B`), 0, strength / Math.sqrt(rank));
    pairs.set(m[1]!, { rank, inFeatures: inn, outFeatures: out, a, b });
  }
  return { scale: alpha / rank, pairs };
}
