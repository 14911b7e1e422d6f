// Gemma 4 text config (`config.json`, model_type gemma4_text) and the per-layer quantities derived
// from it. Field names are the HF names verbatim. Reference: spec/gemma4.md §1, §1.1, §3.6.
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { ConfigError, parseLocated, UserError, validateLocated } from "@owntune/core";

export type LayerType = "sliding_attention" | "full_attention";

const positiveInt = z.number().int().positive();

// Upper bounds on shape fields, far above any published model (Gemma 4 31B: hidden 5376, 60 layers,
// vocab 262,144; the largest open models stay under hidden 20k, 130 layers, vocab 1M): a value past
// one is a typo or a corrupt file, and would size allocations and files in the petabytes.
/** hidden_size, intermediate_size, hidden_size_per_layer_input. */
export const MAX_WIDTH = 1 << 17;
/** num_hidden_layers. */
export const MAX_LAYERS = 1024;
/** num_attention_heads and KV heads. */
export const MAX_HEADS = 1024;
/** head_dim and global_head_dim. */
export const MAX_HEAD_DIM = 8192;
/** vocab_size and vocab_size_per_layer_input. */
export const MAX_VOCAB = 1 << 24;
/** sliding_window and max_position_embeddings (tokens). */
export const MAX_POSITIONS = 1 << 24;
const bounded = (max: number) => positiveInt.max(max);

const ropeSliding = z.object({
  rope_type: z.literal("default").default("default"),
  rope_theta: z.number().positive().default(10_000),
});

const ropeFull = z.object({
  rope_type: z.enum(["proportional", "default"]).default("proportional"),
  partial_rotary_factor: z.number().gt(0).max(1).default(0.25),
  rope_theta: z.number().positive().default(1_000_000),
});

/** The text-model fields this toolkit reads; HF adds keys all the time, so unknown keys are ignored. */
export const gemma4TextConfigSchema = z.object({
  model_type: z.literal("gemma4_text").default("gemma4_text"),
  vocab_size: bounded(MAX_VOCAB),
  vocab_size_per_layer_input: bounded(MAX_VOCAB).optional(),
  hidden_size: bounded(MAX_WIDTH),
  intermediate_size: bounded(MAX_WIDTH),
  num_hidden_layers: bounded(MAX_LAYERS),
  num_attention_heads: bounded(MAX_HEADS),
  num_key_value_heads: bounded(MAX_HEADS),
  num_global_key_value_heads: bounded(MAX_HEADS).nullable().default(null),
  head_dim: bounded(MAX_HEAD_DIM),
  global_head_dim: bounded(MAX_HEAD_DIM),
  attention_k_eq_v: z.boolean().default(false),
  layer_types: z
    .array(z.enum(["sliding_attention", "full_attention"]))
    .max(MAX_LAYERS)
    .optional(),
  sliding_window: bounded(MAX_POSITIONS),
  rope_parameters: z
    .object({
      sliding_attention: ropeSliding.default({ rope_type: "default", rope_theta: 10_000 }),
      full_attention: ropeFull.default({ rope_type: "proportional", partial_rotary_factor: 0.25, rope_theta: 1_000_000 }),
    })
    .default({
      sliding_attention: { rope_type: "default", rope_theta: 10_000 },
      full_attention: { rope_type: "proportional", partial_rotary_factor: 0.25, rope_theta: 1_000_000 },
    }),
  num_kv_shared_layers: z.number().int().min(0).default(0),
  hidden_size_per_layer_input: z.number().int().min(0).max(MAX_WIDTH).default(0),
  use_double_wide_mlp: z.boolean().default(false),
  hidden_activation: z.enum(["gelu_pytorch_tanh"]).default("gelu_pytorch_tanh"),
  rms_norm_eps: z.number().positive().default(1e-6),
  final_logit_softcapping: z.number().positive().nullable().default(null),
  tie_word_embeddings: z.boolean().default(true),
  max_position_embeddings: bounded(MAX_POSITIONS).default(131_072),
  attention_bias: z.literal(false).default(false),
  enable_moe_block: z.boolean().default(false),
  pad_token_id: z.number().int().min(0).default(0),
  bos_token_id: z.number().int().min(0).default(2),
  eos_token_id: z.union([z.number().int().min(0), z.array(z.number().int().min(0))]).default(1),
});

/** Parsed text config, with every default filled in and `layer_types` always present. */
export type Gemma4Config = Omit<z.output<typeof gemma4TextConfigSchema>, "layer_types" | "vocab_size_per_layer_input"> & {
  layer_types: LayerType[];
  vocab_size_per_layer_input: number;
};

/** HF's default when `layer_types` is absent: every 6th layer full, and the last layer always full. */
export function defaultLayerTypes(numLayers: number): LayerType[] {
  return Array.from({ length: numLayers }, (_, i) => ((i + 1) % 6 === 0 || i === numLayers - 1 ? "full_attention" : "sliding_attention"));
}

/** Cross-field checks zod cannot express per field; every problem is reported. */
function crossCheck(c: Gemma4Config): Array<{ field: string; message: string }> {
  const problems: Array<{ field: string; message: string }> = [];
  const L = c.num_hidden_layers;
  const layerTypesFit = c.layer_types.length === L;
  if (!layerTypesFit) {
    problems.push({ field: "layer_types", message: `expected ${L} entries (num_hidden_layers), got ${c.layer_types.length}` });
  }
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    problems.push({
      field: "num_key_value_heads",
      message: `num_attention_heads (${c.num_attention_heads}) must be a multiple of it, got ${c.num_key_value_heads}`,
    });
  }
  if (c.num_global_key_value_heads !== null && c.num_attention_heads % c.num_global_key_value_heads !== 0) {
    problems.push({
      field: "num_global_key_value_heads",
      message: `num_attention_heads (${c.num_attention_heads}) must be a multiple of it, got ${c.num_global_key_value_heads}`,
    });
  }
  if (c.num_kv_shared_layers >= L) {
    problems.push({ field: "num_kv_shared_layers", message: `must be below num_hidden_layers (${L}), got ${c.num_kv_shared_layers}` });
  }
  for (const [field, d] of [
    ["head_dim", c.head_dim],
    ["global_head_dim", c.global_head_dim],
  ] as const) {
    if (d % 2 !== 0) problems.push({ field, message: `RoPE pairs dims j and j+d/2, so it must be even, got ${d}` });
  }
  // With layer_types the wrong length, what KV-shared layers read is unknowable: that one problem is enough.
  if (c.num_kv_shared_layers > 0 && c.num_kv_shared_layers < L && layerTypesFit) {
    const f = L - c.num_kv_shared_layers;
    for (let i = f; i < L; i++) {
      if (kvSourceLayer(c, i) < 0) {
        problems.push({
          field: "layer_types",
          message: `KV-shared layer ${i} (${c.layer_types[i]}) has no earlier non-shared layer of the same type to read`,
        });
        break;
      }
    }
  }
  return problems;
}

/** Validates an already-parsed JSON object; `file` names it in errors. Accepts the multimodal layout. */
export function parseGemma4Config(json: unknown, file = "config.json", source?: ReturnType<typeof parseLocated>): Gemma4Config {
  let root = json as Record<string, unknown> | null;
  let prefix: string[] = [];
  if (root && typeof root === "object" && root.model_type === "gemma4" && root.text_config && typeof root.text_config === "object") {
    root = root.text_config as Record<string, unknown>;
    prefix = ["text_config"];
  }
  if (!root || typeof root !== "object") throw new UserError("expected a JSON object", { file });
  if (root.model_type !== undefined && root.model_type !== "gemma4_text") {
    throw new UserError(`model_type "${String(root.model_type)}" is not supported; owntune trains Gemma 4 text models (gemma4_text)`, {
      file,
      field: [...prefix, "model_type"].join("."),
    });
  }
  if (root.enable_moe_block === true) {
    throw new UserError(
      "this is the Gemma 4 mixture-of-experts model (enable_moe_block: true); owntune trains the dense models (E2B, E4B, 31B)",
      { file, field: [...prefix, "enable_moe_block"].join(".") },
    );
  }
  // Without the file's text (a config built in code), problems carry no line.
  const located = source ?? { value: json, lineOf: () => undefined, keyLineOf: () => undefined };
  const sub = {
    ...located,
    value: root,
    lineOf: (p: readonly PropertyKey[]) => located.lineOf([...prefix, ...p]),
    keyLineOf: (p: readonly PropertyKey[], k: string) => located.keyLineOf([...prefix, ...p], k),
  };
  const parsed = validateLocated(gemma4TextConfigSchema, sub, file);
  const config: Gemma4Config = {
    ...parsed,
    layer_types: parsed.layer_types ?? defaultLayerTypes(parsed.num_hidden_layers),
    vocab_size_per_layer_input: parsed.vocab_size_per_layer_input ?? parsed.vocab_size,
  };
  const problems = crossCheck(config);
  if (problems.length > 0) {
    throw new ConfigError(
      file,
      problems.map((p) => ({ line: sub.lineOf([p.field]), field: [...prefix, p.field].join("."), message: p.message })),
    );
  }
  return config;
}

/** Reads and validates `config.json` (text-only or multimodal layout). */
export async function readGemma4Config(path: string): Promise<Gemma4Config> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new UserError(`cannot read (${(e as NodeJS.ErrnoException).code})`, {
      file: path,
      hint: "is this a model directory in Hugging Face layout?",
    });
  }
  const located = parseLocated(text, path);
  return parseGemma4Config(located.value, path, located);
}

/** The `config.json` object for a config (text-only layout, as `Gemma4ForCausalLM` writes it). */
export function configToJson(c: Gemma4Config): Record<string, unknown> {
  return { architectures: ["Gemma4ForCausalLM"], ...c, model_type: "gemma4_text", torch_dtype: "bfloat16" };
}

// ---------------------------------------------------------------------------------------------
// Per-layer derived quantities (spec §1.1).

/** Everything about layer `i` that the forward pass, the cache and the exporter need. */
export interface LayerSpec {
  index: number;
  type: LayerType;
  sliding: boolean;
  /** Per-head width: head_dim on sliding layers, global_head_dim on full ones. */
  headDim: number;
  numHeads: number;
  numKvHeads: number;
  /** False on full layers with attention_k_eq_v: V is the raw K projection. */
  hasVProj: boolean;
  /** True for the last num_kv_shared_layers layers: they read `kvSource`'s cache. */
  kvShared: boolean;
  /** The layer whose K/V this layer attends to (itself unless shared). */
  kvSource: number;
  /** GeGLU width (2F on shared layers with use_double_wide_mlp). */
  mlpWidth: number;
  ropeTheta: number;
  /** Rotated frequency pairs: d/2 on sliding layers, floor(d·partial/2) on proportional full layers. */
  ropePairs: number;
}

/** The last non-shared layer before `f = L − S` with the same type as layer `i` (−1 if none). */
export function kvSourceLayer(c: Gemma4Config, i: number): number {
  const f = c.num_hidden_layers - c.num_kv_shared_layers;
  if (c.num_kv_shared_layers === 0 || i < f) return i;
  for (let j = f - 1; j >= 0; j--) if (c.layer_types[j] === c.layer_types[i]) return j;
  return -1;
}

export function layerSpec(c: Gemma4Config, i: number): LayerSpec {
  const type = c.layer_types[i];
  if (type === undefined) throw new RangeError(`layer ${i} out of range (num_hidden_layers ${c.num_hidden_layers})`);
  const sliding = type === "sliding_attention";
  const headDim = sliding ? c.head_dim : c.global_head_dim;
  const kEqV = !sliding && c.attention_k_eq_v;
  const numKvHeads = kEqV && c.num_global_key_value_heads !== null ? c.num_global_key_value_heads : c.num_key_value_heads;
  const f = c.num_hidden_layers - c.num_kv_shared_layers;
  const kvShared = c.num_kv_shared_layers > 0 && i >= f;
  const rope = sliding ? c.rope_parameters.sliding_attention : c.rope_parameters.full_attention;
  const partial =
    !sliding && c.rope_parameters.full_attention.rope_type === "proportional" ? c.rope_parameters.full_attention.partial_rotary_factor : 1;
  return {
    index: i,
    type,
    sliding,
    headDim,
    numHeads: c.num_attention_heads,
    numKvHeads,
    hasVProj: !kEqV,
    kvShared,
    kvSource: kvSourceLayer(c, i),
    mlpWidth: c.use_double_wide_mlp && kvShared ? 2 * c.intermediate_size : c.intermediate_size,
    ropeTheta: rope.rope_theta,
    ropePairs: Math.floor((headDim * partial) / 2),
  };
}

export function layerSpecs(c: Gemma4Config): LayerSpec[] {
  return Array.from({ length: c.num_hidden_layers }, (_, i) => layerSpec(c, i));
}

/**
 * llama.cpp v0.4.0 (node-llama-cpp 3.21.1) assumes the KV-sharing sources are layer f−1 (full) and
 * f−2 (sliding); any other order aborts its process at context creation (spec §3.6, §10).
 * Returns why this config cannot run there, or undefined when it can.
 */
export function llamaCppKvShareProblem(c: Gemma4Config): string | undefined {
  const S = c.num_kv_shared_layers;
  if (S === 0) return undefined;
  const f = c.num_hidden_layers - S;
  if (f < 2 || c.layer_types[f - 1] !== "full_attention" || c.layer_types[f - 2] !== "sliding_attention") {
    return (
      `with num_kv_shared_layers=${S}, llama.cpp needs layer ${f - 1} (f−1) to be full_attention and layer ${f - 2} (f−2) ` +
      `sliding_attention, but they are ${c.layer_types[f - 1] ?? "absent"} and ${c.layer_types[f - 2] ?? "absent"}; ` +
      `llama.cpp would abort its whole process when creating a context`
    );
  }
  return undefined;
}

/** Parameter counts: the embedding tables apart from the rest (what compute scales with). */
export function countParameters(c: Gemma4Config): { embedding: number; perLayerEmbedding: number; other: number; total: number } {
  const H = c.hidden_size;
  const P = c.hidden_size_per_layer_input;
  const L = c.num_hidden_layers;
  let other = H; // final norm
  if (P > 0) other += L * P * H + P; // per_layer_model_projection + its norm
  for (const s of layerSpecs(c)) {
    const q = s.numHeads * s.headDim;
    const kv = s.numKvHeads * s.headDim;
    other += H * q + q * H + s.headDim; // q_proj, o_proj, q_norm
    if (!s.kvShared) other += H * kv + (s.hasVProj ? H * kv : 0) + s.headDim; // k_proj, v_proj, k_norm
    other += 3 * H * s.mlpWidth + 4 * H + 1; // MLP, four norms, layer_scalar
    if (P > 0) other += 2 * H * P + H; // per_layer_input_gate, per_layer_projection, post_per_layer_input_norm
  }
  const embedding = c.vocab_size * H;
  const perLayerEmbedding = P > 0 ? c.vocab_size_per_layer_input * L * P : 0;
  return { embedding, perLayerEmbedding, other, total: embedding + perLayerEmbedding + other };
}
