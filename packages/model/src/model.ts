// A Gemma 4 text model in memory, ready for the forward pass: base linears (linear.ts decides where
// they live), norm vectors and layer scalars on the backend, the tied embedding as vocabulary chunks
// (lm-head.ts: on the backend when small, else compact on the host), and the per-layer-embedding table,
// only ever gathered from: read from the checkpoint file row by row, or held compact in memory. Under the
// native kernels (kernels.ts) linears and the embedding live in ggml memory as the base dtype instead.
// Reference: spec/gemma4.md §1.1, §4; tensor list from tensors.ts. Memory figures: BENCHMARKS.md ## model.
import { totalmem } from "node:os";
import * as tf from "@tensorflow/tfjs";
import { baseDtypeBytes, type BaseDtype, type TransposedCopy } from "@owntune/ggml";
import { silentProgress, UserError, type Progress } from "@owntune/core";
import { layerSpecs, type Gemma4Config, type LayerSpec } from "./config.js";
import { ChunkedRows, FileRows, type HostDtype, type RowTable } from "./host-tables.js";
import { describeKernels, selectKernels, type KernelInfo, type KernelName } from "./kernels.js";
import { DEVICE_EMBEDDING_MAX_BYTES, EmbeddingTable, type EmbeddingStorage, type TokenEmbedding } from "./lm-head.js";
import { autoPlacement, baseWeight, F32_WEIGHT_MEMORY_SHARE, LinearWeights, nativeWeight, type WeightPlacement } from "./linear.js";
import { NativeEmbedding } from "./native-head.js";
import { expectedTensors, memoryTensorSource, type TensorSource } from "./tensors.js";

/** Where the per-layer-embedding table's rows come from: the checkpoint file (positioned reads), or memory. */
export type PleStorage = "file" | "memory";

export interface LoadOptions {
  /**
   * Which kernels multiply base weights: "native" (ggml), "tfjs", or "auto" (default: OWNTUNE_KERNELS,
   * else native when the ggml libraries load). A tfjs `placement` implies tfjs.
   */
  kernels?: KernelName | "auto";
  /**
   * How base linears are held: f32, bf16, q8_0, q4_0, q4_k, or "auto" (default: f32 while its float32
   * size fits F32_WEIGHT_MEMORY_SHARE of memory, else bf16). Quantized types need the native kernels;
   * on tfjs they are held as bf16 (said in `storage.kernels.reason`).
   */
  baseDtype?: BaseDtype | "auto";
  /**
   * Native: how input gradients get Wᵀ (see GgmlMatrix): "stored", "on-the-fly", "none" (inference:
   * no gradients through the base, Q4 weights repacked), or "auto" (default: stored while W and Wᵀ fit
   * TRANSPOSED_MEMORY_SHARE of memory, else on the fly).
   */
  transposed?: TransposedCopy | "auto";
  /**
   * tfjs: where base linears live: "device", "host" (float32), "host-bf16", or "auto" (default: float32
   * while they fit, see `autoPlacement` in linear.ts). "host-bf16" also keeps the embedding tables as bf16.
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

/**
 * Share of the machine's memory that `auto` lets the native base (W plus a stored Wᵀ) take before it
 * forms Wᵀ per backward product instead: E2B as bf16 (3.8 GB per copy) then stays under 8 GB in all.
 */
export const TRANSPOSED_MEMORY_SHARE = 0.25;

/** Where each kind of weight is kept, as `loadGemma4` decided it (see `planStorage`). */
export interface StoragePlan {
  /** Which kernels multiply the base weights, and why. */
  kernels: KernelInfo;
  linears: WeightPlacement;
  /** What base linears are held as (tfjs: f32 on device/host, bf16 under host-bf16). */
  baseDtype: BaseDtype;
  /** Native: how input gradients get Wᵀ. */
  transposed?: TransposedCopy;
  embedding: EmbeddingStorage;
  ple: { where: "file" } | { where: "memory"; dtype: HostDtype } | undefined;
}

/** `native (…), base q4_0, Wᵀ stored, embedding native-bf16`: the storage line for start banners. */
export function describeStorage(plan: StoragePlan): string {
  const linears =
    plan.kernels.name === "native" ? `base ${plan.baseDtype}, Wᵀ ${plan.transposed}` : `base ${plan.baseDtype} (${plan.linears})`;
  return `${describeKernels(plan.kernels)}, ${linears}, embedding ${plan.embedding}`;
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
  readonly embedding: TokenEmbedding;
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
 * Where `loadGemma4` keeps each kind of weight for `config` from `source`, on `kernels`:
 * - native: linears in ggml memory as `options.baseDtype` (auto: f32 while its float32 size is at most
 *   F32_WEIGHT_MEMORY_SHARE of memory, else bf16), Wᵀ per `options.transposed` (auto: stored while W
 *   and Wᵀ fit TRANSPOSED_MEMORY_SHARE); the embedding in ggml memory, f32 with an f32 base, else bf16;
 * - tfjs: linears per `options.placement`, or `autoPlacement` by their float32 size, the backend and the
 *   machine's memory (a bf16 or quantized base dtype: host-bf16); the token embedding bf16 on the host
 *   under `host-bf16`, else on the backend while its float32 size is at most DEVICE_EMBEDDING_MAX_BYTES,
 *   else on the host as bf16 when the source stores it so (lossless), or f32;
 * - per-layer embeddings: read from the file when the source can (a checkpoint: nothing held, a
 *   positioned read per token, measured in BENCHMARKS.md ## model), else in memory like the embedding.
 */
export function planStorage(
  config: Gemma4Config,
  source: Pick<TensorSource, "dtype" | "fileRows">,
  options: Pick<LoadOptions, "placement" | "pleStorage" | "baseDtype" | "transposed"> = {},
  totalMemory = totalmem(),
  kernels: KernelInfo = { name: "tfjs", reason: "planned for tfjs" },
): StoragePlan {
  const specs = expectedTensors(config);
  const linearParams = specs.filter((s) => s.role === "linear").reduce((a, s) => a + s.shape[0]! * s.shape[1]!, 0);
  const wanted = options.baseDtype ?? "auto";
  const pleIn = (dtype: (name: string) => HostDtype): StoragePlan["ple"] => {
    if (config.hidden_size_per_layer_input === 0) return undefined;
    const name = "embed_tokens_per_layer.weight";
    return options.pleStorage !== "memory" && source.fileRows?.(name) ? { where: "file" } : { where: "memory", dtype: dtype(name) };
  };
  if (kernels.name === "native") {
    const baseDtype: BaseDtype = wanted !== "auto" ? wanted : 4 * linearParams <= F32_WEIGHT_MEMORY_SHARE * totalMemory ? "f32" : "bf16";
    const both = 2 * baseDtypeBytes(baseDtype) * linearParams;
    const transposed =
      options.transposed === undefined || options.transposed === "auto"
        ? both <= TRANSPOSED_MEMORY_SHARE * totalMemory
          ? "stored"
          : "on-the-fly"
        : options.transposed;
    const table = (name: string): HostDtype => (baseDtype === "f32" && source.dtype?.(name) !== "BF16" ? "f32" : "bf16");
    const embedding = table("embed_tokens.weight") === "f32" ? "native-f32" : "native-bf16";
    return { kernels, linears: "native", baseDtype, transposed, embedding, ple: pleIn(table) };
  }
  let linears: WeightPlacement;
  if (options.placement !== undefined && options.placement !== "auto") linears = options.placement;
  else if (wanted !== "auto" && wanted !== "f32") linears = "host-bf16";
  else {
    linears = autoPlacement(4 * linearParams, tf.getBackend(), totalMemory);
    if (wanted === "f32" && linears === "host-bf16") linears = "host";
  }
  const compact = linears === "host-bf16";
  if (wanted !== "auto" && wanted !== "f32" && wanted !== "bf16")
    kernels = { ...kernels, reason: `${kernels.reason}; base dtype ${wanted} needs the native kernels: held as bf16` };
  const hostDtype = (name: string): HostDtype => (compact || source.dtype?.(name) === "BF16" ? "bf16" : "f32");
  const embedding: EmbeddingStorage = compact
    ? "bf16"
    : 4 * config.vocab_size * config.hidden_size <= DEVICE_EMBEDDING_MAX_BYTES
      ? "device"
      : hostDtype("embed_tokens.weight");
  return { kernels, linears, baseDtype: compact ? "bf16" : "f32", embedding, ple: pleIn(hostDtype) };
}

/** The kernels a load runs on: a tfjs placement implies tfjs; otherwise `selectKernels`. */
function kernelsFor(options: LoadOptions): KernelInfo {
  const placement = options.placement;
  if (placement !== undefined && placement !== "auto" && placement !== "native") {
    if (options.kernels === "native")
      throw new UserError(`placement ${placement} is a TensorFlow.js placement; the native kernels hold weights in ggml memory`, {
        field: "placement",
      });
    return { name: "tfjs", reason: `placement ${placement}` };
  }
  return selectKernels(placement === "native" ? "native" : options.kernels).info;
}

/** Builds the model from any TensorSource (a checkpoint on disk, or weights in memory). */
export async function loadGemma4(config: Gemma4Config, source: TensorSource, options: LoadOptions = {}): Promise<Gemma4Model> {
  const progress = options.progress ?? silentProgress;
  const specs = expectedTensors(config);
  for (const spec of specs) if (!source.has(spec.name)) throw new RangeError(`weights lack ${spec.name}`);
  const storage = planStorage(config, source, options, totalmem(), kernelsFor(options));
  const linears = new LinearWeights();
  const norms = new Map<string, tf.Tensor1D>();
  const layerScalars = new Array<number>(config.num_hidden_layers).fill(1);
  let embedding: TokenEmbedding | undefined;
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
        const shape = { vocabChunk: options.vocabChunk, tokenBlock: options.tokenBlock };
        embedding =
          storage.embedding === "native-f32" || storage.embedding === "native-bf16"
            ? await NativeEmbedding.load(readRows, config.vocab_size, config.hidden_size, {
                ...shape,
                dtype: storage.embedding === "native-f32" ? "f32" : "bf16",
              })
            : await EmbeddingTable.load(readRows, config.vocab_size, config.hidden_size, { ...shape, storage: storage.embedding });
      } else if (spec.name === "embed_tokens_per_layer.weight") {
        const [rows, width] = spec.shape as [number, number];
        const fileRows = storage.ple?.where === "file" ? source.fileRows?.(spec.name) : undefined;
        ple = fileRows
          ? new FileRows(fileRows)
          : await ChunkedRows.load(readRows, rows, width, storage.ple?.where === "memory" ? storage.ple.dtype : "f32", {
              chunkBytes: options.hostChunkBytes,
            });
      } else if (spec.role === "linear" && storage.linears === "native") {
        const dtype = storage.baseDtype;
        linears.add(await nativeWeight(spec.name, spec.shape[0]!, spec.shape[1]!, { dtype, transposed: storage.transposed! }, readRows));
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
export function gemma4FromWeights(
  config: Gemma4Config,
  weights: ReadonlyMap<string, Float32Array>,
  options: LoadOptions = {},
): Promise<Gemma4Model> {
  return loadGemma4(config, memoryTensorSource(config, weights), options);
}
