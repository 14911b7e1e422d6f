// ggml tensor types: the ids and block geometry live with the native bindings (@owntune/ggml).
export { GGML_TYPE_COUNT, GgmlType, ggmlNBytes, ggmlTypeInfo, ggmlTypeName } from "@owntune/ggml";
