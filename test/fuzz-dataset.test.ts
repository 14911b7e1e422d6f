// Seeded fuzzing of columnar data: curate's Arrow and Parquet input readers, and a curated dataset's shards and manifest: 1,000 mutated files per parser, each
// accepted or refused with a UserError within the time bound (test/fuzz/harness.ts).
import { describeFuzz } from "./fuzz/suite.js";
import { arrowInputTarget, parquetTarget, datasetShardTarget, manifestTarget } from "./fuzz/targets.js";

describeFuzz([arrowInputTarget, parquetTarget, datasetShardTarget, manifestTarget]);
