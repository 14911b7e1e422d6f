export {
  configToJson,
  countParameters,
  type Gemma4Config,
  layerSpecs,
  llamaCppKvShareProblem,
  parseGemma4Config,
  readGemma4Config,
} from "./config.js";
export { gemma4_31b, gemma4E2b, gemma4E4b, gemma4Tiny, presetNames, presets } from "./presets.js";
export { expectedTensors, memoryTensorSource, type TensorSource, TEXT_PREFIX } from "./tensors.js";
export { randomTensor, randomWeights } from "./init-weights.js";
export { ChunkedRows, FileRows, type TensorFileRows } from "./host-tables.js";
export { openCheckpoint, shardFileName, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./checkpoint.js";
export { loadModelDir, readGenerationConfig } from "./model-dir.js";
export { type BackendInfo, describeBackend, initBackend } from "./backend.js";
export { BASE_DTYPES, TRANSPOSED_COPIES, type BaseDtype, type TransposedCopy } from "@owntune/ggml";
export { type KernelName, parseBaseDtype, parseKernelName, selectKernels } from "./kernels.js";
export { baseWeight, type BaseWeight, linear, LinearWeights, type LoraLayers, type LoraTensors } from "./linear.js";
export { DEFAULT_TOKEN_BLOCK, DEFAULT_VOCAB_CHUNK, EmbeddingTable } from "./lm-head.js";
export {
  describeStorage,
  gemma4FromWeights,
  type Gemma4Model,
  loadGemma4,
  type LoadOptions,
  planStorage,
  type StoragePlan,
} from "./model.js";
export { type LossBatch } from "./batch.js";
export { type Ablation, ABLATIONS } from "./ablation.js";
export { lastTokenLogits } from "./gemma4.js";
export { countLossTokens, lmLoss, nextTokenLogprobs, tokenLogprobs } from "./loss.js";
export { recomputeByDefault } from "./recompute.js";
export { generate } from "./generate.js";
export { scoreIds } from "./score.js";
export { checkDiskSpace, initModel, planShards } from "./init-model.js";
