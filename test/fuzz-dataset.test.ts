// Seeded fuzzing of a curated dataset's Arrow shards and its manifest.json (read as inspect and the
// trainer read them): 1,000 mutated files per parser, each accepted or refused with a UserError
// within the time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { datasetShardTarget, manifestTarget } from "./fuzz/targets.js";

describeFuzz([datasetShardTarget, manifestTarget]);
