export { isRunFailure, isUserError, RunFailure, UserError } from "./errors.js";
export {
  ConfigError,
  type ConfigProblem,
  didYouMean,
  formatProblems,
  knownKeysAt,
  type LocatedSource,
  parseConfig,
  parseLocated,
  schemaAt,
  schemaDef,
  validateLocated,
} from "./config-errors.js";
export {
  type AtomicFile,
  openAtomic,
  removePendingTemps,
  removeStaleTemps,
  tempPathFor,
  withAtomicDir,
  withAtomicFile,
  withTempDir,
  writeFileAtomic,
} from "./atomic-write.js";
export { claimOutputDir, clearStaleTemps, MODEL_MARKER_FILE, MODEL_MARKER_FORMAT, type OutputKind, RUN_FORMAT } from "./output-dir.js";
export { type Progress, progressFor, silentProgress } from "./progress.js";
export { formatBytes } from "./format-bytes.js";
export { defaultThreadCount, serveJobs, startModuleWorker, ThreadPool } from "./worker-thread.js";
export {
  bf16BitsToF32,
  bf16ToF32,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
  roundToBf16,
} from "./float-convert.js";
export { fillNormal, fmix32, hashString32, hashString53, mulberry32, seededRandom, shuffledIndices, uniform } from "./random.js";
export {
  DTYPE_BYTES,
  FLOAT_DTYPES,
  type FloatDtype,
  numElements,
  type SafetensorsDtype,
  type SafetensorsEntry,
  SafetensorsFile,
  type TensorToWrite,
  withSafetensors,
  writeSafetensors,
} from "./safetensors.js";
