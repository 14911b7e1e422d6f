// manifest.json of a curated dataset directory: format version (checked on read), inputs with
// content hashes, the resolved config, tokenizer identity, seq_len, counts and per-filter drops.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { parseLocated, UserError, validateLocated } from "@owntune/core";

/** Bumped whenever the shard layout, the manifest or the meaning of a column changes (2: a sha256 per shard). */
export const DATASET_FORMAT_VERSION = 2;
export const DATASET_FORMAT = "owntune-dataset";

/** The columns every shard has: FixedSizeList<int32>[seq_len] each. */
export const DATASET_COLUMNS = {
  input_ids: "token ids; padding uses pad_id",
  loss_mask: "1 where the token is a training target (predicted from the tokens before it in its document), else 0",
  position_ids: "position within the token's document, restarting at 0 for each document; 0 on padding",
  segment_ids: "1, 2, … numbering the documents of the row; 0 on padding (attention never crosses segments)",
} as const;

const splitSchema = z.object({
  shards: z.array(
    z.object({
      // A plain name inside the dataset folder: the manifest must not send readers elsewhere.
      file: z.string().regex(/^[\w.-]+\.arrow$/, "a .arrow file name inside the dataset folder"),
      rows: z.number().int().min(0),
      bytes: z.number().int().min(0),
      sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 hex digits"),
    }),
  ),
  rows: z.number().int().min(0),
  examples: z.number().int().min(0),
  tokens: z.number().int().min(0),
  trained_tokens: z.number().int().min(0),
  packing_efficiency: z.number(),
});
export type SplitSummary = z.infer<typeof splitSchema>;

export const manifestSchema = z.object({
  format: z.literal(DATASET_FORMAT),
  format_version: z.number().int(),
  seq_len: z.number().int().positive(),
  packing: z.boolean(),
  pad_id: z.number().int().min(0),
  columns: z.record(z.string(), z.string()),
  seed: z.number().int().min(0),
  tokenizer: z.object({
    source: z.string(),
    sha256: z.string(),
    config_sha256: z.string().nullable(),
    vocab_size: z.number().int(),
  }),
  inputs: z.array(
    z.object({
      path: z.string(),
      format: z.string(),
      schema: z.string(),
      weight: z.number(),
      sha256: z.string(),
      bytes: z.number(),
      rows: z.number().int(),
    }),
  ),
  config: z.record(z.string(), z.unknown()),
  splits: z.object({ train: splitSchema, val: splitSchema }),
  counts: z.record(z.string(), z.number()),
  drops: z.record(z.string(), z.record(z.string(), z.number())),
  pii: z.record(z.string(), z.number()),
  /** With `--format hf-parquet`: the Hugging Face Parquet files of each split (data/…). */
  hf_parquet: z.object({ train: z.array(z.string()), validation: z.array(z.string()) }).optional(),
});
export type Manifest = z.infer<typeof manifestSchema>;

/** Reads and checks `dir/manifest.json`: a wrong format version is a UserError telling how to fix it. */
export async function readManifest(dir: string): Promise<Manifest> {
  const file = join(dir, "manifest.json");
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    throw new UserError("no manifest.json: not a curated dataset directory", { file: dir, hint: 'make one with "owntune curate"' });
  }
  // Parsed keeping positions, so a damaged field is reported at its line like any config file's.
  const located = parseLocated(text, file);
  const r = located.value as { format?: unknown; format_version?: unknown } | null;
  if (r?.format !== DATASET_FORMAT) throw new UserError(`not an owntune dataset manifest (format ${JSON.stringify(r?.format)})`, { file });
  if (r.format_version !== DATASET_FORMAT_VERSION) {
    throw new UserError(`dataset format ${String(r.format_version)}, this owntune reads ${DATASET_FORMAT_VERSION}`, {
      file,
      hint: 're-run "owntune curate"',
    });
  }
  return validateLocated(manifestSchema, located, file);
}
