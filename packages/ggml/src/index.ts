export * from "./types.js";
export * from "./library.js";
export * from "./runtime.js";
export * from "./matrix.js";
export * from "./quantize.js";
