// Test helpers shared by every package's tests (`@owntune/core/testing`, source only: never built).
export { tempDir } from "./temp-dir.js";
