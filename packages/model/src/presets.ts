// Model shapes by name: a tiny one for tests and quick runs, and the published Gemma 4 dense sizes.
// Published numbers: spec/gemma4.md §7 (HF transformers convert_gemma4_weights.py variant table,
// cross-checked with llama.cpp's size switch and the checkpoints' config.json files).
import { parseGemma4Config, type Gemma4Config, type LayerType } from "./config.js";

const S: LayerType = "sliding_attention";
const F: LayerType = "full_attention";

/** `n` sliding layers then one full layer, `times` times (the published patterns). */
function pattern(slidingPerFull: number, times: number): LayerType[] {
  return Array.from({ length: times }, () => [...Array<LayerType>(slidingPerFull).fill(S), F]).flat();
}

const shared = {
  vocab_size: 262_144,
  vocab_size_per_layer_input: 262_144,
  head_dim: 256,
  global_head_dim: 512,
  rope_parameters: {
    sliding_attention: { rope_type: "default" as const, rope_theta: 10_000 },
    full_attention: { rope_type: "proportional" as const, partial_rotary_factor: 0.25, rope_theta: 1_000_000 },
  },
  rms_norm_eps: 1e-6,
  final_logit_softcapping: 30,
  tie_word_embeddings: true,
  hidden_activation: "gelu_pytorch_tanh" as const,
  attention_bias: false as const,
  enable_moe_block: false,
  pad_token_id: 0,
  bos_token_id: 2,
  eos_token_id: 1,
};

/**
 * Every dense Gemma 4 feature, switched on somewhere, small enough for a training step in seconds on
 * two CPU cores: sliding (window 16, shorter than test sequences) and full layers with different
 * head widths (32 / 64), GQA (4 query heads on 2 KV heads; 1 on full layers), k=v on full layers,
 * per-layer embeddings (P = 16), KV sharing of the last 2 layers (sources: layer 2 sliding = f−2,
 * layer 3 full = f−1, the order llama.cpp runs), the double-wide MLP on shared layers, layer scalars
 * and logit soft-capping. The real 262,144-token vocabulary, so the real tokenizer works with it.
 */
export const gemma4Tiny = (): Gemma4Config =>
  parseGemma4Config({
    ...shared,
    hidden_size: 128,
    intermediate_size: 512,
    num_hidden_layers: 6,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_global_key_value_heads: 1,
    head_dim: 32,
    global_head_dim: 64,
    attention_k_eq_v: true,
    layer_types: [S, F, S, F, S, F],
    sliding_window: 16,
    num_kv_shared_layers: 2,
    hidden_size_per_layer_input: 16,
    use_double_wide_mlp: true,
    max_position_embeddings: 4096,
  });

/** Gemma 4 E2B: 35 layers (4 sliding + 1 full, ×7), PLE, last 20 layers share KV, double-wide MLP there. */
export const gemma4E2b = (): Gemma4Config =>
  parseGemma4Config({
    ...shared,
    hidden_size: 1536,
    intermediate_size: 6144,
    num_hidden_layers: 35,
    num_attention_heads: 8,
    num_key_value_heads: 1,
    num_global_key_value_heads: null,
    attention_k_eq_v: false,
    layer_types: pattern(4, 7),
    sliding_window: 512,
    num_kv_shared_layers: 20,
    hidden_size_per_layer_input: 256,
    use_double_wide_mlp: true,
    max_position_embeddings: 131_072,
  });

/** Gemma 4 E4B: 42 layers (5 + 1, ×7), PLE, last 18 layers share KV. */
export const gemma4E4b = (): Gemma4Config =>
  parseGemma4Config({
    ...shared,
    hidden_size: 2560,
    intermediate_size: 10_240,
    num_hidden_layers: 42,
    num_attention_heads: 8,
    num_key_value_heads: 2,
    num_global_key_value_heads: null,
    attention_k_eq_v: false,
    layer_types: pattern(5, 7),
    sliding_window: 512,
    num_kv_shared_layers: 18,
    hidden_size_per_layer_input: 256,
    use_double_wide_mlp: false,
    max_position_embeddings: 131_072,
  });

/** Gemma 4 31B: 60 layers (5 + 1, ×10), 16 KV heads sliding / 4 full with k=v, no PLE, no sharing. */
export const gemma4_31b = (): Gemma4Config =>
  parseGemma4Config({
    ...shared,
    hidden_size: 5376,
    intermediate_size: 21_504,
    num_hidden_layers: 60,
    num_attention_heads: 32,
    num_key_value_heads: 16,
    num_global_key_value_heads: 4,
    attention_k_eq_v: true,
    layer_types: pattern(5, 10),
    sliding_window: 1024,
    num_kv_shared_layers: 0,
    hidden_size_per_layer_input: 0,
    use_double_wide_mlp: false,
    max_position_embeddings: 262_144,
  });

export const presets: Readonly<Record<string, () => Gemma4Config>> = {
  "gemma4-tiny": gemma4Tiny,
  "gemma4-e2b": gemma4E2b,
  "gemma4-e4b": gemma4E4b,
  "gemma4-31b": gemma4_31b,
};

export const presetNames = Object.keys(presets);
