export * from "./adapter.js";
export * from "./merge.js";
export * from "./peft.js";
export * from "./random-adapter.js";
