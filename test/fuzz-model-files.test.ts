// Seeded fuzzing of safetensors, GGUF and config.json: the files a model folder and an export hold: 1,000 mutated files per parser, each
// accepted or refused with a UserError within the time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { safetensorsTarget, ggufTarget, configJsonTarget } from "./fuzz/targets.js";

describeFuzz([safetensorsTarget, ggufTarget, configJsonTarget]);
