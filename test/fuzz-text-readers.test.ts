// Seeded fuzzing of curate's text readers: JSONL, gzip-compressed JSONL and CSV: 1,000 mutated files per parser, each
// accepted or refused with a UserError within the time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { jsonlTarget, jsonlGzTarget, csvTarget } from "./fuzz/targets.js";

describeFuzz([jsonlTarget, jsonlGzTarget, csvTarget]);
