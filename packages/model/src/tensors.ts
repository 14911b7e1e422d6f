// The text model's tensors by HF name (prefix stripped) with their shapes, derived from the config.
// One list for the loader's checks, the initializer and the exporter. Reference: spec/gemma4.md §4.
import { layerSpecs, type Gemma4Config } from "./config.js";
import type { TensorFileRows } from "./host-tables.js";

/** Prefix of text weights in `Gemma4ForCausalLM` (text-only) checkpoints. */
export const TEXT_PREFIX = "model.";
/** Prefix of text weights in `Gemma4ForConditionalGeneration` (published, multimodal) checkpoints. */
export const MULTIMODAL_TEXT_PREFIX = "model.language_model.";

/** Kinds of tensor, so callers can pick dtypes or LoRA targets without parsing names. */
export type TensorRole = "embedding" | "linear" | "norm" | "scalar";

export interface TensorSpec {
  /** HF name without the model prefix, e.g. `layers.3.self_attn.q_proj.weight`. */
  name: string;
  /** HF (row-major) shape, `[out, in]` for linears. */
  shape: number[];
  role: TensorRole;
  /** Layer index, for per-layer tensors. */
  layer?: number;
}

/**
 * Every tensor a checkpoint of this config must hold, in a fixed order: embeddings, per-layer
 * embedding inputs, then each layer, then the final norm. KV-shared layers have no k/v/k_norm.
 */
export function expectedTensors(c: Gemma4Config): TensorSpec[] {
  const H = c.hidden_size;
  const P = c.hidden_size_per_layer_input;
  const L = c.num_hidden_layers;
  const out: TensorSpec[] = [{ name: "embed_tokens.weight", shape: [c.vocab_size, H], role: "embedding" }];
  if (P > 0) {
    out.push(
      { name: "embed_tokens_per_layer.weight", shape: [c.vocab_size_per_layer_input, L * P], role: "embedding" },
      { name: "per_layer_model_projection.weight", shape: [L * P, H], role: "linear" },
      { name: "per_layer_projection_norm.weight", shape: [P], role: "norm" },
    );
  }
  for (const s of layerSpecs(c)) {
    const l = `layers.${s.index}.`;
    const q = s.numHeads * s.headDim;
    const kv = s.numKvHeads * s.headDim;
    const layer = s.index;
    out.push({ name: `${l}input_layernorm.weight`, shape: [H], role: "norm", layer });
    out.push({ name: `${l}self_attn.q_proj.weight`, shape: [q, H], role: "linear", layer });
    if (!s.kvShared) {
      out.push({ name: `${l}self_attn.k_proj.weight`, shape: [kv, H], role: "linear", layer });
      if (s.hasVProj) out.push({ name: `${l}self_attn.v_proj.weight`, shape: [kv, H], role: "linear", layer });
    }
    out.push({ name: `${l}self_attn.o_proj.weight`, shape: [H, q], role: "linear", layer });
    out.push({ name: `${l}self_attn.q_norm.weight`, shape: [s.headDim], role: "norm", layer });
    if (!s.kvShared) out.push({ name: `${l}self_attn.k_norm.weight`, shape: [s.headDim], role: "norm", layer });
    out.push({ name: `${l}post_attention_layernorm.weight`, shape: [H], role: "norm", layer });
    out.push({ name: `${l}pre_feedforward_layernorm.weight`, shape: [H], role: "norm", layer });
    out.push({ name: `${l}mlp.gate_proj.weight`, shape: [s.mlpWidth, H], role: "linear", layer });
    out.push({ name: `${l}mlp.up_proj.weight`, shape: [s.mlpWidth, H], role: "linear", layer });
    out.push({ name: `${l}mlp.down_proj.weight`, shape: [H, s.mlpWidth], role: "linear", layer });
    out.push({ name: `${l}post_feedforward_layernorm.weight`, shape: [H], role: "norm", layer });
    if (P > 0) {
      out.push({ name: `${l}per_layer_input_gate.weight`, shape: [P, H], role: "linear", layer });
      out.push({ name: `${l}per_layer_projection.weight`, shape: [H, P], role: "linear", layer });
      out.push({ name: `${l}post_per_layer_input_norm.weight`, shape: [H], role: "norm", layer });
    }
    out.push({ name: `${l}layer_scalar`, shape: [1], role: "scalar", layer });
  }
  out.push({ name: "norm.weight", shape: [H], role: "norm" });
  return out;
}

/**
 * Tensors a checkpoint may carry that the text model does not use: the unused K/V weights of
 * KV-shared layers (HF ignores them on load) and a tied `lm_head.weight` copy.
 */
export function ignorableTensor(c: Gemma4Config, name: string): boolean {
  if (name === "lm_head.weight" && c.tie_word_embeddings) return true;
  const m = /^layers\.(\d+)\.self_attn\.(k_proj|v_proj|k_norm)\.weight$/.exec(name);
  if (!m) return false;
  const i = Number(m[1]);
  return c.num_kv_shared_layers > 0 && i >= c.num_hidden_layers - c.num_kv_shared_layers && i < c.num_hidden_layers;
}

/**
 * Where base weights come from, tensor by tensor (a checkpoint on disk, weights in memory, a GGUF file).
 * Names are HF names without the model prefix. Shapes are HF row-major shapes.
 */
export interface TensorSource {
  has(name: string): boolean;
  shape(name: string): number[];
  /** Decodes one tensor to float32 (bf16/f16 widened exactly). For small tensors: a big table does not fit one array. */
  read(name: string): Promise<Float32Array>;
  /**
   * Rows `start … start+count−1` along the first axis, decoded to float32: `[count, ...shape[1:]]`
   * (a 1-D tensor has rows of one value). How tables too large to widen whole are read.
   */
  readRows(name: string, start: number, count: number): Promise<Float32Array>;
  /** The stored dtype (`BF16`, `F32`, …) when known: a bf16-stored tensor can be kept as bf16 losslessly. */
  dtype?(name: string): string;
  /** Where a 2-D float tensor's rows lie in a file, when they can be read there directly (positioned reads). */
  fileRows?(name: string): TensorFileRows | undefined;
}

/** Weights held in memory as a TensorSource (shapes from the config's tensor list). */
export function memoryTensorSource(c: Gemma4Config, weights: ReadonlyMap<string, Float32Array>): TensorSource {
  const shapes = new Map(expectedTensors(c).map((t) => [t.name, t.shape]));
  const shape = (name: string) => {
    const s = shapes.get(name);
    if (!s) throw new RangeError(`no tensor ${name} in this config`);
    return s;
  };
  const get = (name: string) => {
    const w = weights.get(name);
    if (!w) throw new RangeError(`no tensor ${name} in these weights`);
    return w;
  };
  return {
    has: (name) => weights.has(name),
    shape,
    async read(name) {
      return get(name);
    },
    async readRows(name, start, count) {
      const s = shape(name);
      const rows = s[0] ?? 1;
      if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > rows) {
        throw new RangeError(`rows [${start}, ${start + count}) out of range for ${name} [${s.join(", ")}]`);
      }
      const row = s.slice(1).reduce((a, b) => a * b, 1);
      return get(name).subarray(start * row, (start + count) * row); // a view, as `read` returns the array itself
    },
    dtype: () => "F32",
  };
}
