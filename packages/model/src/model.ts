// A Gemma 4 text model in memory, ready for the forward pass: base linears (linear.ts decides where
// they live), norm vectors and layer scalars on the backend, the tied embedding as vocabulary chunks
// (lm-head.ts: on the backend when small, else compact on the host), and the per-layer-embedding table,
// only ever gathered from: read from the checkpoint file row by row, or held compact in memory.
// Reference: spec/gemma4.md §1.1, §4; tensor list from tensors.ts. Memory figures: BENCHMARKS.md ## model.
import { totalmem } from "node:os";
import * as tf from "@tensorflow/tfjs";
import { layerSpecs, type Gemma4Config, type LayerSpec } from "./config.js";
import { ChunkedRows, FileRows, type HostDtype, type RowTable } from "./host-tables.js";
import { DEVICE_EMBEDDING_MAX_BYTES, EmbeddingTable, type EmbeddingStorage } from "./lm-head.js";
import { autoPlacement, baseWeight, LinearWeights, type WeightPlacement } from "./linear.js";
import { silentProgress, type Progress } from "./progress.js";
import { expectedTensors, memoryTensorSource, type TensorSource } from "./tensors.js";

export { WASM_DEVICE_WEIGHT_BUDGET } from "./linear.js";

/** Where the per-layer-embedding table's rows come from: the checkpoint file (positioned reads), or memory. */
export type PleStorage = "file" | "memory";

export interface LoadOptions {
  /**
   * Where base linears live: "device", "host" (float32), "host-bf16", or "auto" (default: float32 while
   * they fit, see `autoPlacement` in linear.ts). "host-bf16" also keeps the embedding tables as bf16.
   */
  placement?: WeightPlacement | "auto";
  /** Per-layer embeddings: "file" when the source can read rows from its file (default), else "memory". */
  pleStorage?: PleStorage;
  /** Vocabulary columns per LM-head tile (lm-head.ts DEFAULT_VOCAB_CHUNK). */
  vocabChunk?: number;
  /** Token rows per LM-head tile. */
  tokenBlock?: number;
  /** Bytes per chunk of in-memory host tables (host-tables.ts HOST_CHUNK_BYTES); for tests. */
  hostChunkBytes?: number;
  progress?: Progress;
}

/** Where each kind of weight is kept, as `loadGemma4` decided it (see `planStorage`). */
export interface StoragePlan {
  linears: WeightPlacement;
  embedding: EmbeddingStorage;
  ple: { where: "file" } | { where: "memory"; dtype: HostDtype } | undefined;
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
  /** Per-layer embedding table `embed_tokens_per_layer` [Vp, L·P], gathered row by row. */
  readonly ple: RowTable | undefined;
  readonly storage: StoragePlan;
  /**
   * The GELU (tanh form) used by the MLP gate and the PLE gate; absent means ops.ts `gelu`. Only for
   * emulating another runtime's arithmetic (export's verify mimics ggml's fp16-table GELU).
   */
  readonly gelu?: (x: tf.Tensor) => tf.Tensor;
  dispose(): void;
}

/**
 * Where `loadGemma4` keeps each kind of weight for `config` from `source`:
 * - linears: `options.placement`, or `autoPlacement` by their float32 size, the backend and the machine's memory;
 * - token embedding: bf16 on the host under `host-bf16`; else on the backend while its float32 size is at
 *   most DEVICE_EMBEDDING_MAX_BYTES; else on the host as bf16 when the source stores it so (lossless), or f32;
 * - per-layer embeddings: read from the file when the source can (a checkpoint: nothing held, a
 *   positioned read per token, measured in BENCHMARKS.md ## model), else in memory like the embedding.
 */
export function planStorage(config: Gemma4Config, source: Pick<TensorSource, "dtype" | "fileRows">, options: Pick<LoadOptions, "placement" | "pleStorage"> = {}, totalMemory = totalmem()): StoragePlan {
  const specs = expectedTensors(config);
  const linearBytes = specs.filter((s) => s.role === "linear").reduce((a, s) => a + 4 * s.shape[0]! * s.shape[1]!, 0);
  const linears = options.placement === undefined || options.placement === "auto" ? autoPlacement(linearBytes, tf.getBackend(), totalMemory) : options.placement;
  const compact = linears === "host-bf16";
  const hostDtype = (name: string): HostDtype => (compact || source.dtype?.(name) === "BF16" ? "bf16" : "f32");
  const embedding: EmbeddingStorage = compact
    ? "bf16"
    : 4 * config.vocab_size * config.hidden_size <= DEVICE_EMBEDDING_MAX_BYTES
      ? "device"
      : hostDtype("embed_tokens.weight");
  let ple: StoragePlan["ple"];
  if (config.hidden_size_per_layer_input > 0) {
    const name = "embed_tokens_per_layer.weight";
    ple = options.pleStorage !== "memory" && source.fileRows?.(name) ? { where: "file" } : { where: "memory", dtype: hostDtype(name) };
  }
  return { linears, embedding, ple };
}

/** Builds the model from any TensorSource (a checkpoint on disk, or weights in memory). */
export async function loadGemma4(config: Gemma4Config, source: TensorSource, options: LoadOptions = {}): Promise<Gemma4Model> {
  const progress = options.progress ?? silentProgress;
  const specs = expectedTensors(config);
  for (const spec of specs) if (!source.has(spec.name)) throw new RangeError(`weights lack ${spec.name}`);
  const storage = planStorage(config, source, options);
  const linears = new LinearWeights();
  const norms = new Map<string, tf.Tensor1D>();
  const layerScalars = new Array<number>(config.num_hidden_layers).fill(1);
  let embedding: EmbeddingTable | undefined;
  let ple: RowTable | undefined;
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
    storage,
    dispose() {
      linears.dispose();
      for (const n of norms.values()) n.dispose();
      norms.clear();
      embedding?.dispose();
      ple?.dispose();
    },
  };
  progress.start(specs.length, "loading weights", "tensors");
  try {
    for (const spec of specs) {
      const readRows = (start: number, count: number) => source.readRows(spec.name, start, count);
      if (spec.name === "embed_tokens.weight") {
        embedding = await EmbeddingTable.load(readRows, config.vocab_size, config.hidden_size, { vocabChunk: options.vocabChunk, tokenBlock: options.tokenBlock, storage: storage.embedding });
      } else if (spec.name === "embed_tokens_per_layer.weight") {
        const [rows, width] = spec.shape as [number, number];
        const fileRows = storage.ple?.where === "file" ? source.fileRows?.(spec.name) : undefined;
        ple = fileRows
          ? new FileRows(fileRows)
          : await ChunkedRows.load(readRows, rows, width, storage.ple?.where === "memory" ? storage.ple.dtype : "f32", { chunkBytes: options.hostChunkBytes });
      } else {
        const data = await source.read(spec.name);
        if (spec.role === "linear") {
          linears.add(baseWeight(spec.name, data, spec.shape[0]!, spec.shape[1]!, storage.linears));
        } else if (spec.role === "norm") {
          norms.set(spec.name, tf.tensor1d(data));
        } else if (spec.role === "scalar") {
          layerScalars[spec.layer!] = data[0]!;
        }
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
