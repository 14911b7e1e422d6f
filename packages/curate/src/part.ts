// A part: what the per-document steps of one shard (`--shard i/N`), or of a run that spilled, leave for
// the merge. Parquet files any SQL engine reads, plus shard.json with the shard's counters:
//   examples-NNNNN.parquet  one row per kept example (tokens as int32/uint8 little-endian blobs)
//   bands-NNNNN.parquet     one row per (example, LSH band): the near-dedup bucket keys
//   shard.parquet           one row: the shard's index and how many rows it read
// Columns are documented in docs/curate-at-scale.md; merge-sql/ reads them by these names.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { UserError, writeFileAtomic } from "@owntune/core";
import type { DuckDBAppender } from "@duckdb/node-api";
import type { CountersJson } from "./counters.js";
import { runSql, sqlString, type Engine } from "./duckdb.js";
import type { Manifest } from "./manifest.js";
import type { ProcessedExample } from "./read-step.js";
import type { DatasetContent } from "./write-step.js";

export const PART_FORMAT = "owntune-curate-part";
/** Bumped whenever a part's files change meaning: a merge refuses parts of another version. */
export const PART_FORMAT_VERSION = 1;

/** Examples per Parquet file at most (and about 64 MB of tokens): bounds what the appender holds. */
const FLUSH_ROWS = 32_768;
const FLUSH_TOKEN_BYTES = 64 * 1024 * 1024;

/** shard.json. */
export interface PartMeta {
  format: typeof PART_FORMAT;
  format_version: number;
  shard: number;
  shards: number;
  /** The resolved curate config (without `workers`): every shard and the merge must agree on it. */
  config: Record<string, unknown>;
  tokenizer: Manifest["tokenizer"];
  pad_id: number;
  /** Whether examples carry their final text (for `--format hf-parquet`). */
  keep_examples: boolean;
  /** manifest.json's inputs (hashes of whole files): written by shard 0 only. */
  inputs?: DatasetContent["inputs"];
  counters: CountersJson;
  bytes_read: number;
}

const EXAMPLE_COLUMNS =
  "shard INTEGER, local_id BIGINT, input_index INTEGER, source_file VARCHAR, line BIGINT, exact_key VARCHAR, n_tokens INTEGER, " +
  "trained INTEGER, full_tokens INTEGER, truncated BOOLEAN, boundary_merges INTEGER, preview VARCHAR, ids BLOB, mask BLOB, example VARCHAR";
const BAND_COLUMNS = "shard INTEGER, local_id BIGINT, band INTEGER, band_key BIGINT";

const bytesOf = (a: Int32Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Appends kept examples into Parquet files in `dir`, a bounded batch at a time. */
export class PartWriter {
  private examples!: DuckDBAppender;
  private bands!: DuckDBAppender;
  private pendingRows = 0;
  private pendingBytes = 0;
  private files = 0;

  private constructor(
    private readonly engine: Engine,
    private readonly dir: string,
    private readonly shard: number,
  ) {}

  static async open(engine: Engine, dir: string, shard: number): Promise<PartWriter> {
    const w = new PartWriter(engine, dir, shard);
    await runSql(engine, `CREATE TABLE part_examples (${EXAMPLE_COLUMNS}); CREATE TABLE part_bands (${BAND_COLUMNS});`, "the part writer");
    await w.openAppenders();
    return w;
  }

  private async openAppenders(): Promise<void> {
    this.examples = await this.engine.db.createAppender("part_examples");
    this.bands = await this.engine.db.createAppender("part_bands");
  }

  async add(ex: ProcessedExample): Promise<void> {
    const a = this.examples;
    a.appendInteger(this.shard);
    a.appendBigInt(BigInt(ex.id));
    a.appendInteger(ex.input);
    a.appendVarchar(ex.file);
    a.appendBigInt(BigInt(ex.line));
    if (ex.exactKey === undefined) a.appendNull();
    else a.appendVarchar(ex.exactKey);
    a.appendInteger(ex.ids.length);
    a.appendInteger(ex.trained);
    a.appendInteger(ex.fullTokens);
    a.appendBoolean(ex.truncated);
    a.appendInteger(ex.boundaryMerges);
    a.appendVarchar(ex.preview);
    a.appendBlob(bytesOf(ex.ids));
    a.appendBlob(bytesOf(ex.mask));
    if (ex.example === undefined) a.appendNull();
    else a.appendVarchar(ex.example);
    a.endRow();
    if (ex.bandKeys) {
      for (let band = 0; band < ex.bandKeys.length; band++) {
        this.bands.appendInteger(this.shard);
        this.bands.appendBigInt(BigInt(ex.id));
        this.bands.appendInteger(band);
        this.bands.appendBigInt(BigInt(ex.bandKeys[band]!));
        this.bands.endRow();
      }
    }
    this.pendingRows++;
    this.pendingBytes += ex.ids.byteLength + ex.mask.byteLength + (ex.example?.length ?? 0);
    if (this.pendingRows >= FLUSH_ROWS || this.pendingBytes >= FLUSH_TOKEN_BYTES) await this.flush(true);
  }

  /** Writes what is pending as the next examples/bands Parquet files. */
  private async flush(reopen: boolean): Promise<void> {
    this.examples.closeSync();
    this.bands.closeSync();
    const n = String(this.files++).padStart(5, "0");
    await runSql(
      this.engine,
      `COPY part_examples TO ${sqlString(join(this.dir, `examples-${n}.parquet`))} (FORMAT parquet, COMPRESSION zstd);
       COPY part_bands TO ${sqlString(join(this.dir, `bands-${n}.parquet`))} (FORMAT parquet, COMPRESSION zstd);
       DELETE FROM part_examples; DELETE FROM part_bands;`,
      "writing a part",
    );
    this.pendingRows = 0;
    this.pendingBytes = 0;
    if (reopen) await this.openAppenders();
  }

  /** Writes the last Parquet files, shard.parquet and shard.json. */
  async finish(meta: PartMeta): Promise<void> {
    if (this.pendingRows > 0 || this.files === 0) await this.flush(false);
    else {
      this.examples.closeSync();
      this.bands.closeSync();
    }
    await runSql(
      this.engine,
      `COPY (SELECT CAST(${meta.shard} AS INTEGER) AS shard, CAST(${meta.counters.rowsRead} AS BIGINT) AS row_count)
         TO ${sqlString(join(this.dir, "shard.parquet"))} (FORMAT parquet);
       DROP TABLE part_examples; DROP TABLE part_bands;`,
      "writing a part",
    );
    await writeFileAtomic(join(this.dir, "shard.json"), JSON.stringify(meta) + "\n");
  }
}

/** Reads and checks a part's shard.json. */
export async function readPartMeta(dir: string): Promise<PartMeta> {
  const file = join(dir, "shard.json");
  let raw: Partial<PartMeta>;
  try {
    raw = JSON.parse(await readFile(file, "utf8")) as Partial<PartMeta>;
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw new UserError(missing ? "no shard.json: not a finished curate shard" : "not valid JSON", {
      file: missing ? dir : file,
      hint: missing ? 'run "owntune curate --shard i/N --out" for it (again)' : undefined,
    });
  }
  if (raw.format !== PART_FORMAT) throw new UserError(`not a curate shard (format ${JSON.stringify(raw.format)})`, { file });
  if (raw.format_version !== PART_FORMAT_VERSION) {
    throw new UserError(`shard format ${String(raw.format_version)}, this owntune merges ${PART_FORMAT_VERSION}`, {
      file,
      hint: "re-run the shards with this owntune",
    });
  }
  return raw as PartMeta;
}
