// A Gemma 4 text model in memory, ready for the forward pass: base linears (linear.ts decides where
// they live), norm vectors and layer scalars on the backend, the tied embedding as vocabulary chunks,
// and the per-layer-embedding table on the host (it is only ever gathered from).
// Reference: spec/gemma4.md §1.1, §4; tensor list from tensors.ts.
import * as tf from "@tensorflow/tfjs";
import { layerSpecs, type Gemma4Config, type LayerSpec } from "./config.js";
import { EmbeddingTable } from "./lm-head.js";
import { baseWeight, LinearWeights, type WeightPlacement } from "./linear.js";
import { silentProgress, type Progress } from "./progress.js";
import { expectedTensors, memoryTensorSource, type TensorSource } from "./tensors.js";

/**
 * Base-weight bytes above which `placement: "auto"` keeps linears on the host under wasm: the wasm
 * heap is 4 GiB for everything (measured: allocation fails past ~3 GiB of tensors), a resident weight
 * costs twice its size there (tfjs-wasm keeps an XNNPACK-packed copy of each matMul's right operand),
 * and the embedding and activations need their share.
 */
export const WASM_DEVICE_WEIGHT_BUDGET = 768 * 2 ** 20;

export interface LoadOptions {
  /** Where base linears live: "device", "host", or "auto" (device unless over WASM_DEVICE_WEIGHT_BUDGET on wasm). */
  placement?: WeightPlacement | "auto";
  /** Vocabulary columns per LM-head tile (lm-head.ts DEFAULT_VOCAB_CHUNK). */
  vocabChunk?: number;
  /** Token rows per LM-head tile. */
  tokenBlock?: number;
  progress?: Progress;
}

/** Per-layer embedding table `embed_tokens_per_layer` [Vp, L·P], kept on the host and gathered row by row. */
export interface PleTable {
  readonly rows: number;
  /** L·P values per row. */
  readonly width: number;
  readonly data: Float32Array;
}

export interface Gemma4Model {
  readonly config: Gemma4Config;
  readonly layers: readonly LayerSpec[];
  /** Every `*_proj` / `per_layer_*` linear, by HF name with `.weight`. */
  readonly linears: LinearWeights;
  /** Norm weights by HF name (`layers.0.input_layernorm.weight`, `norm.weight`, …), [d] on the backend. */
  readonly norms: ReadonlyMap<string, tf.Tensor1D>;
  /** `layers.i.layer_scalar`, as numbers. */
  readonly layerScalars: readonly number[];
  readonly embedding: EmbeddingTable;
  readonly ple: PleTable | undefined;
  /**
   * The GELU (tanh form) used by the MLP gate and the PLE gate; absent means ops.ts `gelu`. Only for
   * emulating another runtime's arithmetic (export's verify mimics ggml's fp16-table GELU).
   */
  readonly gelu?: (x: tf.Tensor) => tf.Tensor;
  dispose(): void;
}

/** Builds the model from any TensorSource (a checkpoint on disk, or weights in memory). */
export async function loadGemma4(config: Gemma4Config, source: TensorSource, options: LoadOptions = {}): Promise<Gemma4Model> {
  const progress = options.progress ?? silentProgress;
  const specs = expectedTensors(config);
  const linearBytes = specs.filter((s) => s.role === "linear").reduce((a, s) => a + 4 * s.shape[0]! * s.shape[1]!, 0);
  const placement: WeightPlacement =
    options.placement === undefined || options.placement === "auto"
      ? tf.getBackend() === "wasm" && linearBytes > WASM_DEVICE_WEIGHT_BUDGET
        ? "host"
        : "device"
      : options.placement;
  const linears = new LinearWeights();
  const norms = new Map<string, tf.Tensor1D>();
  const layerScalars = new Array<number>(config.num_hidden_layers).fill(1);
  let embedding: EmbeddingTable | undefined;
  let ple: PleTable | undefined;
  const built: Gemma4Model = {
    config,
    layers: layerSpecs(config),
    linears,
    norms,
    layerScalars,
    get embedding() {
      return embedding!;
    },
    get ple() {
      return ple;
    },
    dispose() {
      linears.dispose();
      for (const n of norms.values()) n.dispose();
      norms.clear();
      embedding?.dispose();
    },
  };
  progress.start(specs.length, "loading weights", "tensors");
  try {
    for (const spec of specs) {
      if (!source.has(spec.name)) throw new RangeError(`weights lack ${spec.name}`);
      const data = await source.read(spec.name);
      if (spec.name === "embed_tokens.weight") {
        embedding = new EmbeddingTable(data, config.vocab_size, config.hidden_size, { vocabChunk: options.vocabChunk, tokenBlock: options.tokenBlock });
      } else if (spec.name === "embed_tokens_per_layer.weight") {
        ple = { rows: spec.shape[0]!, width: spec.shape[1]!, data };
      } else if (spec.role === "linear") {
        linears.add(baseWeight(spec.name, data, spec.shape[0]!, spec.shape[1]!, placement));
      } else if (spec.role === "norm") {
        norms.set(spec.name, tf.tensor1d(data));
      } else if (spec.role === "scalar") {
        layerScalars[spec.layer!] = data[0]!;
      }
      progress.increment();
    }
  } catch (e) {
    built.dispose();
    throw e;
  } finally {
    progress.stop();
  }
  return built;
}

/** A model from weights in memory (HF names without prefix), e.g. `randomWeights(config, seed)`. */
export function gemma4FromWeights(config: Gemma4Config, weights: ReadonlyMap<string, Float32Array>, options: LoadOptions = {}): Promise<Gemma4Model> {
  return loadGemma4(config, memoryTensorSource(config, weights), options);
}
