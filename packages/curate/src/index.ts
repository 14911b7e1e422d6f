export {
  type CurateConfig,
  type CurateConfigInput,
  curateSchema,
  type InputConfig,
  normalizeSchema,
  piiSchema,
  resolveCurateConfig,
} from "./config.js";
export { type Example } from "./records.js";
export { makeNormalizer } from "./normalize.js";
export { makeRedactor } from "./pii.js";
export { formatExample } from "./format.js";
export { PACK_WINDOW_ITEMS, type PackedRow, planRows } from "./pack.js";
export { readManifest } from "./manifest.js";
export { readShard, writeShard } from "./arrow-dataset.js";
export { CuratedDataset, type DataPosition, type DatasetBatch, type SplitName } from "./dataset-reader.js";
export { escapeHtml } from "./report.js";
export { curate, curateMerge, curateShard, type CurateSummary, type OutputFormat } from "./pipeline.js";
export { formatDatasetInfo, inspectDataset, isDatasetDir } from "./inspect.js";
export { readInput, formatFromName, type FileFormat, type SourceRow } from "./readers/index.js";
export { buildFilters, FILTER_ORDER, type TextFilter, type FilterResult } from "./filters/index.js";
export { splitWords, splitLines } from "./filters/filter.js";
export { identifyLanguage, loadLanguageModel } from "./filters/language.js";
export { minhashSignature, permutationSeeds, shingleHashes } from "./dedup/minhash.js";
export { exactKey } from "./dedup/exact.js";
export { parseShardSpec, type ShardSpec } from "./input-plan.js";
export { CurateCounters, LengthTally } from "./counters.js";
export { setDuckDBImporter } from "./duckdb.js";
