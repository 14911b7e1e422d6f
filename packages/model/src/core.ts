// The TensorFlow.js-free half of @owntune/model: errors, atomic writes, progress, worker threads and the
// tokenizer. Curate (and its worker threads) import this entry, so they never load TensorFlow.js
// (≈ 1 s and 100+ MB per thread). The structure issue moves these into @owntune/core and @owntune/tokenizer.
export * from "./errors.js";
export * from "./config-errors.js";
export * from "./atomic-write.js";
export * from "./progress.js";
export * from "./worker-thread.js";
export * from "./chat-template.js";
export * from "./tokenizer.js";
export * from "./fast-encode.js";
