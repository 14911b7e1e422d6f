export * from "./errors.js";
export * from "./atomic-write.js";
export * from "./progress.js";
export * from "./config-errors.js";
export * from "./config.js";
export * from "./presets.js";
export * from "./tensors.js";
export * from "./init-weights.js";
