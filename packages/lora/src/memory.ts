// An estimate of a LoRA step's peak memory, made before the model is loaded, so a run that cannot fit
// is refused at once (naming the setting to lower) instead of failing hours in. The activation figure
// counts what the training forward keeps for its backward pass per token and layer (see the list in
// `activationFloatsPerToken`); BENCHMARKS.md ## train compares it with measured peaks.
import { totalmem } from "node:os";
import { readFileSync } from "node:fs";
import {
  DEFAULT_TOKEN_BLOCK,
  DEFAULT_VOCAB_CHUNK,
  expectedTensors,
  layerSpecs,
  recomputeByDefault,
  type Gemma4Config,
  type StoragePlan,
} from "@owntune/model";
import type { LoraPlan } from "./targets.js";
import type { TrainConfig } from "./train-config.js";

/** Node, TensorFlow.js, the wasm module and the tokenizer, measured at start (≈ 300–450 MB). */
const RUNTIME_BYTES = 512 * 2 ** 20;
/** tfjs-wasm's heap cannot grow past 4 GiB (32-bit addresses); part of it is its own. */
export const WASM_HEAP_LIMIT_BYTES = 4 * 2 ** 30 - 256 * 2 ** 20;

export interface MemoryEstimate {
  /** Everything, host and backend. */
  total: number;
  base: number;
  lora: number;
  activations: number;
  head: number;
  runtime: number;
  /** What lives in the backend's heap (all of the above but host-held weights and the host optimizer state). */
  backend: number;
}

/**
 * Floats kept per token by one decoder layer for the backward pass: the inputs each custom-gradient op
 * saves (norms: x; LoRA linears: x and x·Aᵀ; GELU and the GeGLU product: their inputs; the attention
 * products: q, k, v and the probabilities, twice), with S keys per query.
 */
export function activationFloatsPerToken(c: Gemma4Config, layer: ReturnType<typeof layerSpecs>[number], S: number, rank: number): number {
  const H = c.hidden_size;
  const q = layer.numHeads * layer.headDim;
  const kv = layer.numKvHeads * layer.headDim;
  const F = layer.mlpWidth;
  const P = c.hidden_size_per_layer_input;
  const norms = 6 * H + q + (layer.kvShared ? 0 : 2 * kv); // input, post-attn, pre-ff, post-ff, post-PLE, scalar; q/k/v norms
  const loraInputs = 4 * H + q + F + 7 * rank; // q/k/v/gate/up read the normed stream, o reads the heads, down the GeGLU
  const attention = 2 * q + 2 * kv + 2 * layer.numHeads * S; // q and heads, k and v, probabilities (softmax and product)
  const mlp = 3 * F; // GELU input, both GeGLU factors
  const ple = P > 0 ? 3 * P + H : 0;
  return norms + loraInputs + attention + mlp + ple;
}

export interface EstimateInput {
  config: Gemma4Config;
  storage: StoragePlan;
  /** Trainable parameters of the adapter. */
  trainable: number;
  rank: number;
  batchSize: number;
  seqLen: number;
  backend: string;
  /** Each decoder layer recomputed in the backward pass (the model's `recompute: "auto"` decides). */
  recompute: boolean;
}

/** Bytes per value of a base held as `dtype` (the block formats' bytes per value). */
const DTYPE_BYTES: Record<string, number> = { f32: 4, bf16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q4_k: 144 / 256 };

export function estimateMemory(o: EstimateInput): MemoryEstimate {
  const c = o.config;
  const st = o.storage;
  const specs = expectedTensors(c);
  const sum = (role: string) => specs.filter((s) => s.role === role).reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const linearValues = sum("linear");
  const native = st.kernels.name === "native";
  // Native: ggml memory, with a stored transposed copy for input gradients unless made on the fly.
  // tfjs: the backend's heap, where wasm keeps an XNNPACK-packed copy of each resident right-hand operand.
  const linearBytes = native
    ? DTYPE_BYTES[st.baseDtype]! * linearValues * (st.transposed === "stored" ? 2 : 1)
    : (st.linears === "host-bf16" ? 2 : 4) * linearValues * (o.backend === "wasm" && st.linears === "device" ? 2 : 1);
  const embValues = c.vocab_size * c.hidden_size;
  const embBytes =
    st.embedding === "bf16" || st.embedding === "native-bf16"
      ? 2 * embValues
      : 4 * embValues * (st.embedding === "device" && o.backend === "wasm" ? 2 : 1);
  const pleBytes =
    st.ple?.where === "memory"
      ? (st.ple.dtype === "bf16" ? 2 : 4) * c.vocab_size_per_layer_input * c.num_hidden_layers * c.hidden_size_per_layer_input
      : 0;
  const base = linearBytes + embBytes + pleBytes + 4 * sum("norm");
  // Host parameters, variables, gradients, their accumulation, AdamW's two moments, the best copy.
  const lora = 7 * 4 * o.trainable;
  const layers = layerSpecs(c);
  const perLayer = layers.map((l) => activationFloatsPerToken(c, l, o.seqLen, o.rank));
  const tokens = o.batchSize * o.seqLen;
  // With recomputation a step keeps each layer's input (and a KV source's K/V) plus one layer's activations.
  const kept = o.recompute
    ? layers.reduce((n, l) => n + c.hidden_size + 2 * l.numKvHeads * l.headDim, 0) + Math.max(...perLayer)
    : perLayer.reduce((a, b) => a + b, 0);
  const activations = 4 * tokens * kept;
  // One head tile's logits, softmax, scaled copy and gradient term, plus the saved hidden states.
  const head = 4 * (4 * DEFAULT_TOKEN_BLOCK * DEFAULT_VOCAB_CHUNK + 2 * tokens * c.hidden_size);
  const total = base + lora + activations + head + RUNTIME_BYTES;
  const onBackend = native ? 0 : (st.linears === "device" ? linearBytes : 0) + (st.embedding === "device" ? embBytes : 0);
  const backend = onBackend + 3 * 4 * o.trainable + activations + head;
  return { total, base, lora, activations, head, runtime: RUNTIME_BYTES, backend };
}

/** The memory this process may use: the machine's, or the cgroup's limit when smaller. */
export function availableMemory(): { bytes: number; source: string } {
  let bytes = totalmem();
  let source = "this machine's memory";
  for (const f of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const v = Number(readFileSync(f, "utf8").trim());
      if (Number.isFinite(v) && v > 0 && v < bytes) {
        bytes = v;
        source = "this container's memory limit";
      }
    } catch {
      // not there
    }
  }
  return { bytes, source };
}

/**
 * What the trainer decides and estimates before it loads the model: the adapter's trainable parameters,
 * whether each layer is recomputed in the backward pass, and the peak-memory estimate of a step of `c`
 * on rows of `seqLen` tokens with the base held as `storage`.
 */
export function estimateTraining(
  config: Gemma4Config,
  plan: LoraPlan,
  c: Pick<TrainConfig, "lora" | "batch_size">,
  seqLen: number,
  storage: StoragePlan,
  backend: string,
): { trainable: number; recompute: boolean; estimate: MemoryEstimate } {
  const trainable = plan.modules.reduce((n, mod) => n + c.lora.r * (mod.inFeatures + mod.outFeatures), 0);
  const recompute = recomputeByDefault({ config, layers: layerSpecs(config) }, c.batch_size, seqLen);
  const estimate = estimateMemory({ config, storage, trainable, rank: c.lora.r, batchSize: c.batch_size, seqLen, backend, recompute });
  return { trainable, recompute, estimate };
}
