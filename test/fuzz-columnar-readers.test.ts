// Seeded fuzzing of curate's columnar input readers, Arrow IPC (as HF datasets writes it) and
// Parquet: 1,000 mutated files per parser, each accepted or refused with a UserError within the
// time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { arrowInputTarget, parquetTarget } from "./fuzz/targets.js";

describeFuzz([arrowInputTarget, parquetTarget]);
