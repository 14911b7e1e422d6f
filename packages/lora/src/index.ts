export * from "./merge.js";
