// Test helpers shared by every package's tests: `@owntune/core/testing`, exported to the TypeScript sources only
// (the "@owntune/source" condition), never to built code.
export { tempDir } from "./temp-dir.js";
export { oracle, type OracleCheck } from "./oracles.js";
