// Seeded fuzzing of curate's columnar input readers, Arrow IPC (as HF datasets writes it) and
// Parquet, and a sweep of extreme values over a dataset shard's header words: 1,000 mutated files
// each, accepted or refused with a UserError within the time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { arrowInputTarget, datasetShardWordsTarget, parquetTarget } from "./fuzz/targets.js";

describeFuzz([arrowInputTarget, parquetTarget, datasetShardWordsTarget]);
