export * from "./chat-template.js";
export * from "./tokenizer.js";
export * from "./fast-encode.js";
