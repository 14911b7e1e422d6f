export { GGML_TYPE_COUNT, ggmlNBytes, GgmlType, ggmlTypeInfo, ggmlTypeName, type GgmlTypeName } from "./types.js";
export { GGML_DIR_ENV, type GgmlBase, loadGgmlBase, nodeLlamaCppBinDir, type Ptr, resetGgmlLoadCache } from "./library.js";
export { defaultGgmlThreads, floatView, ggmlRuntime, GgmlRuntime, int32View } from "./runtime.js";
export {
  BASE_DTYPES,
  type BaseDtype,
  baseDtypeBytes,
  GgmlMatrix,
  type RowReader,
  TRANSPOSED_COPIES,
  type TransposedCopy,
} from "./matrix.js";
export { GGML_QUANTIZE_TYPES, ggmlQuantize } from "./quantize.js";
