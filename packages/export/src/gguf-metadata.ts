// The `general.*` and `gemma4.*` metadata llama.cpp's gemma4 loader reads, and the generated
// `rope_freqs` table. Reference: spec/gemma4.md §5.1–5.2, spec/gguf.md §3.1.
import { layerSpecs, type Gemma4Config } from "@owntune/model";
import { gguf, type GgufEntry } from "./gguf-format.js";

/** llama.cpp's quantization format version (general.quantization_version). */
export const GGML_QUANTIZATION_VERSION = 2;
/** rope_freqs factor for dims that must not rotate: llama.cpp divides the angle by it. */
const NO_ROTATION = 1e30;

export interface GeneralInfo {
  name: string;
  fileType: number;
  /** "model" or "adapter". */
  type?: "model" | "adapter";
}

export function generalEntries(info: GeneralInfo): Array<[string, GgufEntry]> {
  return [
    ["general.architecture", gguf.str("gemma4")],
    ["general.type", gguf.str(info.type ?? "model")],
    ["general.name", gguf.str(info.name)],
    ["general.file_type", gguf.u32(info.fileType)],
    ["general.quantization_version", gguf.u32(GGML_QUANTIZATION_VERSION)],
  ];
}

/** Every `gemma4.*` key for a config (types as gguf-py writes them: counts u32, floats f32). */
export function gemma4Entries(c: Gemma4Config): Array<[string, GgufEntry]> {
  const specs = layerSpecs(c);
  const full = c.rope_parameters.full_attention;
  const sliding = c.rope_parameters.sliding_attention;
  const widths = specs.map((s) => s.mlpWidth);
  const kvHeads = specs.map((s) => s.numKvHeads);
  const uniform = (xs: number[]) => xs.every((x) => x === xs[0]);
  const k = (key: string, e: GgufEntry): [string, GgufEntry] => [`gemma4.${key}`, e];
  const out: Array<[string, GgufEntry]> = [
    k("block_count", gguf.u32(c.num_hidden_layers)),
    k("context_length", gguf.u32(c.max_position_embeddings)),
    k("embedding_length", gguf.u32(c.hidden_size)),
    // Per-layer arrays where layers differ: the double-wide MLP, k=v full layers with their own KV heads.
    k("feed_forward_length", uniform(widths) ? gguf.u32(widths[0]!) : gguf.i32s(widths)),
    k("attention.head_count", gguf.u32(c.num_attention_heads)),
    k("attention.head_count_kv", uniform(kvHeads) ? gguf.u32(kvHeads[0]!) : gguf.i32s(kvHeads)),
    k("attention.key_length", gguf.u32(c.global_head_dim)),
    k("attention.value_length", gguf.u32(c.global_head_dim)),
    k("attention.key_length_swa", gguf.u32(c.head_dim)),
    k("attention.value_length_swa", gguf.u32(c.head_dim)),
    // The whole head: the partial rotation of full layers comes from rope_freqs.
    k("rope.dimension_count", gguf.u32(c.global_head_dim)),
    k("rope.dimension_count_swa", gguf.u32(c.head_dim)),
    k("rope.freq_base", gguf.f32(full.rope_theta)),
    k("rope.freq_base_swa", gguf.f32(sliding.rope_theta)),
    k("attention.sliding_window", gguf.u32(c.sliding_window)),
    k("attention.sliding_window_pattern", gguf.bools(c.layer_types.map((t) => t === "sliding_attention"))),
    k("attention.shared_kv_layers", gguf.u32(c.num_kv_shared_layers)),
    k("embedding_length_per_layer_input", gguf.u32(c.hidden_size_per_layer_input)),
    k("attention.layer_norm_rms_epsilon", gguf.f32(c.rms_norm_eps)),
  ];
  if (c.final_logit_softcapping !== null) out.push(k("final_logit_softcapping", gguf.f32(c.final_logit_softcapping)));
  return out;
}

/**
 * `rope_freqs.weight` [global_head_dim / 2]: 1 for the rotated frequency pairs of full layers,
 * 1e30 (no rotation) for the rest — proportional RoPE, with angles pos·θ^(−2j/d_g).
 */
export function ropeFreqs(c: Gemma4Config): Float32Array {
  const full = c.rope_parameters.full_attention;
  const partial = full.rope_type === "proportional" ? full.partial_rotary_factor : 1;
  const rotated = Math.floor((c.global_head_dim * partial) / 2);
  const out = new Float32Array(c.global_head_dim / 2).fill(NO_ROTATION);
  out.fill(1, 0, rotated);
  return out;
}
