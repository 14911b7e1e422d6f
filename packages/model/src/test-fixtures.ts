// Small configs and on-disk checkpoints for tests (not exported from the package).
import { parseGemma4Config, type Gemma4Config } from "./config.js";
import { randomTensor } from "./init-weights.js";
import { writeSafetensors, type FloatDtype, type TensorToWrite } from "@owntune/core";
import { expectedTensors } from "./tensors.js";

/** Every dense feature of gemma4-tiny (sliding/full, k=v, PLE, KV sharing, double-wide MLP) at toy size. */
export function microConfig(overrides: Record<string, unknown> = {}): Gemma4Config {
  return parseGemma4Config({
    vocab_size: 48,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 4,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    num_global_key_value_heads: 1,
    head_dim: 8,
    global_head_dim: 16,
    attention_k_eq_v: true,
    layer_types: ["sliding_attention", "full_attention", "sliding_attention", "full_attention"],
    sliding_window: 4,
    num_kv_shared_layers: 2,
    hidden_size_per_layer_input: 4,
    use_double_wide_mlp: true,
    final_logit_softcapping: 30,
    ...overrides,
  });
}

/** Writes the config's random weights (seed) under `prefix` into one safetensors file, plus `extra` tensors. */
export async function writeMicroWeights(
  path: string,
  config: Gemma4Config,
  options: {
    seed?: number;
    prefix?: string;
    dtype?: FloatDtype;
    extra?: Array<{ name: string; shape: number[] }>;
    only?: (name: string) => boolean;
  } = {},
): Promise<Map<string, Float32Array>> {
  const { seed = 1, prefix = "model.", dtype = "F32", extra = [], only = () => true } = options;
  const specs = expectedTensors(config).filter((s) => only(s.name));
  const values = new Map(specs.map((s) => [s.name, randomTensor(config, s, seed)]));
  const tensors: TensorToWrite[] = [
    ...specs.map((s) => ({ name: prefix + s.name, dtype, shape: s.shape })),
    ...extra.map((e) => ({ name: e.name, dtype, shape: e.shape })),
  ];
  await writeSafetensors(path, tensors, (t, i) =>
    i < specs.length ? values.get(specs[i]!.name)! : new Float32Array(t.shape.reduce((a, b) => a * b, 1)).fill(0.5),
  );
  return values;
}
