// The curate config: one strict zod schema shared by `owntune curate --config C.yaml` and the
// recipe's `curate:` section. Every filter's defaults are the published ones (see filters/*.ts).
import { z } from "zod";

const positiveInt = z.number().int().positive();
const fraction = z.number().min(0).max(1);

/** Field names of the row schemas; each can be renamed to match a dataset's columns. */
export const fieldsSchema = z
  .object({
    text: z.string().default("text"),
    prompt: z.string().default("prompt"),
    completion: z.string().default("completion"),
    instruction: z.string().default("instruction"),
    input: z.string().default("input"),
    output: z.string().default("output"),
    system: z.string().default("system"),
    messages: z.string().default("messages"),
    role: z.string().default("role"),
    content: z.string().default("content"),
    conversations: z.string().default("conversations"),
    from: z.string().default("from"),
    value: z.string().default("value"),
  })
  .strict();
export type FieldNames = z.output<typeof fieldsSchema>;

export const INPUT_FORMATS = ["auto", "jsonl", "parquet", "arrow", "csv", "text"] as const;
export const ROW_SCHEMAS = ["auto", "text", "prompt_completion", "alpaca", "sharegpt", "messages"] as const;

export const inputSchema = z
  .object({
    path: z.string().min(1).describe("A file (.jsonl, .jsonl.gz, .parquet, .arrow, .csv) or a folder of .txt/.md files."),
    format: z.enum(INPUT_FORMATS).default("auto").describe("File format; auto picks it from the extension."),
    schema: z.enum(ROW_SCHEMAS).default("auto").describe("Row layout; auto picks it from the first row's fields."),
    fields: fieldsSchema.prefault({}).describe("Column names, where a dataset names them differently."),
    weight: z
      .number()
      .min(0)
      .default(1)
      .describe("Mixing weight: expected copies of each kept train example (2 = twice, 0.5 = a seeded half)."),
  })
  .strict();
export type InputConfig = z.output<typeof inputSchema>;

export const normalizeSchema = z
  .object({
    nfc: z.boolean().default(true).describe("Unicode NFC normalization."),
    whitespace: z.boolean().default(true).describe("Trim lines' trailing spaces, CRLF→LF, at most 2 blank lines."),
    control_chars: z.boolean().default(true).describe("Remove C0/C1 control characters except \\n and \\t."),
  })
  .strict();

export const lengthFilterSchema = z
  .object({
    min_chars: z.number().int().min(0).optional(),
    max_chars: positiveInt.optional(),
    min_words: z.number().int().min(0).optional(),
    max_words: positiveInt.optional(),
    min_tokens: z.number().int().min(0).optional(),
    max_tokens: positiveInt.optional(),
  })
  .strict();

// Gopher quality rules: Rae et al. 2021 (arXiv:2112.11446) App. A.1.1, datatrove GopherQualityFilter.
export const gopherQualitySchema = z
  .object({
    min_doc_words: z.number().int().min(0).nullable().default(50),
    max_doc_words: positiveInt.nullable().default(100_000),
    min_avg_word_length: z.number().min(0).nullable().default(3),
    max_avg_word_length: z.number().positive().nullable().default(10),
    max_symbol_word_ratio: fraction.nullable().default(0.1),
    max_bullet_lines_ratio: fraction.nullable().default(0.9),
    max_ellipsis_lines_ratio: fraction.nullable().default(0.3),
    max_non_alpha_words_ratio: fraction.nullable().default(0.8),
    min_stop_words: z.number().int().min(0).nullable().default(2),
    stop_words: z.array(z.string()).default(["the", "be", "to", "of", "and", "that", "have", "with"]),
  })
  .strict();

// Gopher repetition rules: Rae et al. 2021 Table A1, datatrove GopherRepetitionFilter.
export const gopherRepetitionSchema = z
  .object({
    dup_line_frac: fraction.nullable().default(0.3),
    dup_para_frac: fraction.nullable().default(0.3),
    dup_line_char_frac: fraction.nullable().default(0.2),
    dup_para_char_frac: fraction.nullable().default(0.2),
    top_n_grams: z.array(z.tuple([positiveInt, fraction])).default([
      [2, 0.2],
      [3, 0.18],
      [4, 0.16],
    ]),
    dup_n_grams: z.array(z.tuple([positiveInt, fraction])).default([
      [5, 0.15],
      [6, 0.14],
      [7, 0.13],
      [8, 0.12],
      [9, 0.11],
      [10, 0.1],
    ]),
  })
  .strict();

// C4: Raffel et al. 2020 §2.2, TFDS c4_utils.py, datatrove C4QualityFilter.
export const c4Schema = z
  .object({
    remove_citations: z.boolean().default(true),
    filter_no_terminal_punct: z.boolean().default(true),
    min_num_sentences: z.number().int().default(5).describe("-1 disables."),
    min_words_per_line: z.number().int().default(3).describe("-1 disables."),
    max_word_length: z.number().int().default(1000).describe("-1 disables."),
    filter_lorem_ipsum: z.boolean().default(true),
    filter_javascript: z.boolean().default(true),
    filter_curly_bracket: z.boolean().default(true),
    filter_policy: z.boolean().default(true),
  })
  .strict();

// FineWeb: Penedo et al. 2024 (arXiv:2406.17557) §3.3, datatrove FineWebQualityFilter.
export const finewebSchema = z
  .object({
    line_punct_thr: fraction.default(0.12),
    line_punct_exclude_zero: z.boolean().default(false),
    short_line_thr: fraction.default(0.67),
    short_line_length: positiveInt.default(30),
    char_duplicates_ratio: fraction.default(0.01),
    new_line_ratio: z.number().min(0).default(0.3),
  })
  .strict();

// Language ID: fastText lid.176 as FineWeb/datatrove LanguageFilter use it (threshold 0.65).
export const languageSchema = z
  .object({
    languages: z.array(z.string().min(2)).min(1).default(["en"]).describe("ISO 639 codes to keep (fastText lid.176 labels)."),
    min_score: fraction.default(0.65),
  })
  .strict();

export const blocklistSchema = z
  .object({
    patterns: z.array(z.string().min(1)).default([]).describe("Regular expressions (JavaScript syntax); a match drops the example."),
    words: z.array(z.string().min(1)).default([]).describe("Words or phrases matched whole-word, case-insensitively."),
    case_insensitive: z.boolean().default(true),
  })
  .strict();

export const filtersSchema = z
  .object({
    length: lengthFilterSchema.optional(),
    language: languageSchema.optional(),
    gopher_quality: gopherQualitySchema.optional(),
    gopher_repetition: gopherRepetitionSchema.optional(),
    c4: c4Schema.optional(),
    fineweb: finewebSchema.optional(),
    blocklist: blocklistSchema.optional(),
  })
  .strict()
  .describe("Each filter present runs (with its published defaults for fields not given), in this fixed order.");

export const PII_KINDS = ["email", "phone", "ip", "credit_card", "api_key"] as const;
export type PiiKind = (typeof PII_KINDS)[number];

export const piiSchema = z
  .object({
    kinds: z.array(z.enum(PII_KINDS)).default([...PII_KINDS]),
    replacement: z.string().default("<{KIND}>").describe("What replaces a match; {KIND} becomes EMAIL, PHONE, …"),
  })
  .strict();

export const nearDedupSchema = z
  .object({
    num_perm: positiveInt.default(112).describe("Hash permutations (datatrove: 14 bands × 8 rows)."),
    bands: positiveInt.optional().describe("LSH bands; with rows, overrides threshold."),
    rows: positiveInt.optional(),
    threshold: z.number().gt(0).lt(1).default(0.8).describe("Jaccard threshold; bands×rows chosen from it like datasketch."),
    ngram: positiveInt.default(5),
    unit: z.enum(["word", "char"]).default("word"),
  })
  .strict();

export const dedupSchema = z
  .object({
    exact: z.boolean().default(true).describe("Drop exact duplicates (hash of lowercased, whitespace-collapsed text)."),
    near: nearDedupSchema.optional().describe("MinHash-LSH near-dedup; keeps the first example of each cluster."),
  })
  .strict();

export const decontaminateSchema = z
  .object({
    files: z.array(z.string().min(1)).min(1).describe("Evaluation files (any input format); their text is what must not leak."),
    ngram: positiveInt.default(13).describe("Word n-gram length (GPT-3 used 13)."),
  })
  .strict();

export const curateSchema = z
  .object({
    inputs: z.array(inputSchema).min(1).describe("Input files; several are mixed by weight."),
    seed: z.number().int().min(0).optional().describe("Seed for shuffle, split and sampling (default: the recipe's)."),
    tokenizer: z.string().optional().describe("Folder with tokenizer.json + tokenizer_config.json (default: the model's, else Gemma's)."),
    seq_len: positiveInt.default(2048).describe("Tokens per packed row."),
    packing: z.boolean().default(true).describe("Pack several examples per row (best-fit-decreasing); false pads each."),
    prompt_format: z
      .enum(["chat", "plain"])
      .default("chat")
      .describe("prompt/completion and alpaca rows: rendered as a user/assistant chat, or as plain prompt+completion text."),
    overlong: z
      .enum(["drop", "truncate"])
      .default("drop")
      .describe("Examples longer than seq_len: drop, or keep the first seq_len tokens."),
    val_fraction: fraction.default(0.05).describe("Share of examples held out for validation."),
    normalize: normalizeSchema.prefault({}),
    filters: filtersSchema.prefault({}),
    pii: piiSchema.optional(),
    dedup: dedupSchema.prefault({}),
    decontaminate: decontaminateSchema.optional(),
    skip_bad_rows: z.boolean().default(false).describe("Skip malformed rows (counted and reported) instead of stopping."),
    rows_per_shard: positiveInt.optional().describe("Rows per .arrow shard (default: about 256 MB per shard)."),
    workers: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("Worker threads for per-example work (default: one per core; 0 runs it in the main thread)."),
  })
  .strict();

export type CurateConfig = z.output<typeof curateSchema>;
export type CurateConfigInput = z.input<typeof curateSchema>;
export type FiltersConfig = z.output<typeof filtersSchema>;
export type NormalizeConfig = z.output<typeof normalizeSchema>;
export type PiiConfig = z.output<typeof piiSchema>;

/** Parses a config object already loaded (e.g. built from CLI flags); throws ZodError on bad input. */
export function resolveCurateConfig(input: CurateConfigInput): CurateConfig {
  return curateSchema.parse(input);
}
