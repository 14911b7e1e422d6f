// HF → GGUF tensor names for llama.cpp's `gemma4` architecture: the one renaming table of the
// project. HF names are without the model prefix (`layers.3.self_attn.q_proj.weight`).
// Reference: spec/gemma4.md §5.2 (gguf-py's MODEL_ARCH.GEMMA4 name map).

/** Names outside the decoder layers. */
const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  "embed_tokens.weight": "token_embd.weight",
  "lm_head.weight": "output.weight",
  "norm.weight": "output_norm.weight",
  "embed_tokens_per_layer.weight": "per_layer_token_embd.weight",
  "per_layer_model_projection.weight": "per_layer_model_proj.weight",
  "per_layer_projection_norm.weight": "per_layer_proj_norm.weight",
};

/** Names inside layer i: HF suffix after `layers.{i}.` → GGUF suffix after `blk.{i}.`. */
const LAYER_NAMES: Readonly<Record<string, string>> = {
  "input_layernorm.weight": "attn_norm.weight",
  "self_attn.q_proj.weight": "attn_q.weight",
  "self_attn.k_proj.weight": "attn_k.weight",
  "self_attn.v_proj.weight": "attn_v.weight",
  "self_attn.o_proj.weight": "attn_output.weight",
  "self_attn.q_norm.weight": "attn_q_norm.weight",
  "self_attn.k_norm.weight": "attn_k_norm.weight",
  "post_attention_layernorm.weight": "post_attention_norm.weight",
  "pre_feedforward_layernorm.weight": "ffn_norm.weight",
  "mlp.gate_proj.weight": "ffn_gate.weight",
  "mlp.up_proj.weight": "ffn_up.weight",
  "mlp.down_proj.weight": "ffn_down.weight",
  "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
  "per_layer_input_gate.weight": "inp_gate.weight",
  "per_layer_projection.weight": "proj.weight",
  "post_per_layer_input_norm.weight": "post_norm.weight",
  // The converter appends `.weight` to the bare HF scalar.
  layer_scalar: "layer_output_scale.weight",
};

/** llama.cpp's shared proportional-RoPE factor table (generated, no HF source). */
export const ROPE_FREQS_NAME = "rope_freqs.weight";

/** GGUF caps tensor names at 63 bytes (GGML_MAX_NAME 64 includes the NUL). */
export const GGUF_MAX_TENSOR_NAME = 63;

const REVERSE_GLOBAL = new Map(Object.entries(GLOBAL_NAMES).map(([hf, gguf]) => [gguf, hf]));
const REVERSE_LAYER = new Map(Object.entries(LAYER_NAMES).map(([hf, gguf]) => [gguf, hf]));

/** The GGUF name of an HF text-model tensor, or undefined when llama.cpp has no place for it. */
export function ggufTensorName(hfName: string): string | undefined {
  const global = GLOBAL_NAMES[hfName];
  if (global) return global;
  const m = /^layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) return undefined;
  const suffix = LAYER_NAMES[m[2]!];
  return suffix ? `blk.${m[1]}.${suffix}` : undefined;
}

/** The HF name (prefix stripped) of a GGUF tensor, or undefined for generated/unknown tensors. */
export function hfTensorName(ggufName: string): string | undefined {
  const global = REVERSE_GLOBAL.get(ggufName);
  if (global) return global;
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (!m) return undefined;
  const suffix = REVERSE_LAYER.get(m[2]!);
  return suffix ? `layers.${m[1]}.${suffix}` : undefined;
}

/** The GGUF base tensor a LoRA module targets: `layers.3.self_attn.q_proj` → `blk.3.attn_q.weight`. */
export function ggufLoraTarget(moduleName: string): string | undefined {
  return ggufTensorName(`${moduleName}.weight`);
}

/** GGUF dims (ne, fastest first) of a row-major HF shape: the shape reversed. */
export function ggufDims(hfShape: readonly number[]): number[] {
  return [...hfShape].reverse();
}

/** Layer index of a `blk.N.` name, or −1 for global tensors. */
export function ggufLayerIndex(ggufName: string): number {
  const m = /^blk\.(\d+)\./.exec(ggufName);
  return m ? Number(m[1]) : -1;
}

/**
 * llama-quantize's tensor order (llama_model_loader's weight_name_comparer): tensors outside
 * `blk.N.` first, then by layer number, each group by byte-wise name.
 */
export function compareGgufTensorNames(a: string, b: string): number {
  const la = ggufLayerIndex(a);
  const lb = ggufLayerIndex(b);
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}
