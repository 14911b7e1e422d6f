// Seeded fuzzing of a PEFT adapter folder (its safetensors and its adapter_config.json) and the recipe YAML: 1,000 mutated files per parser, each
// accepted or refused with a UserError within the time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { adapterTarget, adapterConfigTarget, recipeTarget } from "./fuzz/targets.js";

describeFuzz([adapterTarget, adapterConfigTarget, recipeTarget]);
