export * from "./quant/fp16.js";
export * from "./quant/ggml-types.js";
export * from "./quant/quantize.js";
