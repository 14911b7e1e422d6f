// `--format hf-parquet`: the curated examples as Hugging Face datasets Parquet, for trainers on GPU
// clusters (TRL, Axolotl) to train on exactly what was curated. data/train-0000k-of-0000n.parquet and
// data/validation-…, one row per example of the split (train copies from mixing weights included,
// unpacked: those trainers pack themselves) with the example as trained on — `text`, or `prompt` and
// `completion`, or `messages` [{role, content}] — and its tokens: `input_ids`, `attention_mask`,
// `labels` (-100 where no loss, as transformers expects) and `completion_mask` (1 where trained, TRL's name).
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBAppender } from "@duckdb/node-api";
import { runSql, sqlString, type Engine } from "./duckdb.js";

/** Examples per Parquet file (and what DuckDB holds before writing one). */
export const HF_EXAMPLES_PER_FILE = 50_000;

export type HfSplit = "train" | "validation";

const list = (a: ArrayLike<number>) => `[${Array.prototype.join.call(a, ",")}]`;

/** Writes the examples of each split, in order, into `dir`/data/*.parquet. */
export class HfParquetWriter {
  private appender!: DuckDBAppender;
  private pos = 0;
  private file = 0;
  private split: HfSplit | undefined;
  readonly files: Record<HfSplit, string[]> = { train: [], validation: [] };

  private constructor(
    private readonly engine: Engine,
    private readonly dir: string,
    private readonly counts: Record<HfSplit, number>,
  ) {}

  static async open(engine: Engine, dir: string, counts: Record<HfSplit, number>): Promise<HfParquetWriter> {
    await mkdir(join(dir, "data"), { recursive: true });
    await runSql(
      engine,
      "CREATE TABLE hf_rows (pos BIGINT, example VARCHAR, ids VARCHAR, labels VARCHAR, mask VARCHAR);",
      "the Parquet export",
    );
    const w = new HfParquetWriter(engine, dir, counts);
    w.appender = await engine.db.createAppender("hf_rows");
    return w;
  }

  private fileCount(split: HfSplit): number {
    return Math.max(1, Math.ceil(this.counts[split] / HF_EXAMPLES_PER_FILE));
  }

  /** Adds the next example of `split` (splits in order: train, then validation). */
  async add(split: HfSplit, example: string, ids: Int32Array, mask: Uint8Array): Promise<void> {
    if (this.split !== split) await this.endSplit(split);
    const labels = Int32Array.from(ids, (id, t) => (mask[t] ? id : -100));
    this.appender.appendBigInt(BigInt(this.pos++));
    this.appender.appendVarchar(example);
    this.appender.appendVarchar(list(ids));
    this.appender.appendVarchar(list(labels));
    this.appender.appendVarchar(list(mask));
    this.appender.endRow();
    if (this.pos === HF_EXAMPLES_PER_FILE) await this.flush();
  }

  private async flush(): Promise<void> {
    const split = this.split!;
    if (this.pos === 0 && this.files[split].length > 0) return;
    this.appender.closeSync();
    const name = `data/${split}-${String(this.file++).padStart(5, "0")}-of-${String(this.fileCount(split)).padStart(5, "0")}.parquet`;
    await runSql(
      this.engine,
      `COPY (
         SELECT
           CASE WHEN j->>'kind' = 'text' THEN j->>'text' END AS text,
           CASE WHEN j->>'kind' = 'prompt_completion' THEN j->>'prompt' END AS prompt,
           CASE WHEN j->>'kind' = 'prompt_completion' THEN j->>'completion' END AS completion,
           CASE WHEN j->>'kind' = 'chat' THEN CAST(j->'messages' AS STRUCT(role VARCHAR, content VARCHAR)[]) END AS messages,
           CAST(ids AS INTEGER[]) AS input_ids,
           list_transform(CAST(mask AS TINYINT[]), m -> CAST(1 AS TINYINT)) AS attention_mask,
           CAST(labels AS INTEGER[]) AS labels,
           CAST(mask AS TINYINT[]) AS completion_mask
         FROM (SELECT pos, CAST(example AS JSON) AS j, ids, labels, mask FROM hf_rows) t
         ORDER BY pos
       ) TO ${sqlString(join(this.dir, name))} (FORMAT parquet, COMPRESSION zstd);
       DELETE FROM hf_rows;`,
      "the Parquet export",
    );
    this.files[split].push(name);
    this.pos = 0;
    this.appender = await this.engine.db.createAppender("hf_rows");
  }

  private async endSplit(next: HfSplit | undefined): Promise<void> {
    if (this.split !== undefined && (this.pos > 0 || this.files[this.split].length === 0)) await this.flush();
    this.split = next;
    this.file = 0;
  }

  /** Writes what is left (an empty split still gets one file). */
  async finish(): Promise<Record<HfSplit, string[]>> {
    for (const s of ["train", "validation"] as const) {
      if (this.files[s].length === 0 && this.split !== s) await this.endSplit(s);
    }
    await this.endSplit(undefined);
    this.appender.closeSync();
    await runSql(this.engine, "DROP TABLE hf_rows;", "the Parquet export");
    return this.files;
  }
}
