// The global steps over parts, as SQL in DuckDB: exact dedup, near-dup buckets → connected components
// with the smallest id kept, the kept list (merge-sql/*.sql, portable to Spark SQL and Trino); then the
// same split/weight and packing code as an in-memory run, and the rows streamed back from DuckDB in row
// order (an out-of-core sort) into the Arrow shards. Same bytes as one process with every row in memory.
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError, type Progress } from "@owntune/core";
import type { DuckDBDataChunk, DuckDBBlobValue } from "@duckdb/node-api";
import { CurateCounters, emptyDatasetError } from "./counters.js";
import { NEAR_DEDUP_AT } from "./dedup-steps.js";
import { runSql, sqlError, sqlString, type Engine } from "./duckdb.js";
import type { Manifest } from "./manifest.js";
import { buildRow, planRows, type PackedRow, type PackItem } from "./pack.js";
import { HfParquetWriter, type HfSplit } from "./hf-export.js";
import { readPartMeta, type PartMeta } from "./part.js";
import { splitAndWeight, TRAIN_SALT, VAL_SALT } from "./split.js";
import type { CurateConfig } from "./config.js";
import { writeDataset, type SplitData, type SplitName } from "./write-step.js";

/** Rounds of label propagation at most: each round at least halves the longest chain, so this is never near. */
const MAX_LABEL_ROUNDS = 200;

const sqlDir = new URL("../merge-sql/", import.meta.url);
const sqlCache = new Map<string, string>();
/** The text of merge-sql/NAME. */
async function sqlFile(name: string): Promise<string> {
  let text = sqlCache.get(name);
  if (text === undefined) sqlCache.set(name, (text = await readFile(new URL(name, sqlDir), "utf8")));
  return text;
}

async function runFile(engine: Engine, name: string): Promise<void> {
  await runSql(engine, await sqlFile(name), `merge-sql/${name}`);
}

/** Every row of a query, as arrays of JS values (for small results). */
async function queryRows(engine: Engine, sql: string, step: string): Promise<unknown[][]> {
  try {
    const reader = await engine.db.runAndReadAll(sql);
    return reader.getRows() as unknown[][];
  } catch (e) {
    throw sqlError(e, step);
  }
}

/** Streams a query's result chunk by chunk. */
async function* queryChunks(engine: Engine, sql: string, step: string): AsyncGenerator<DuckDBDataChunk> {
  let result;
  try {
    result = await engine.db.stream(sql);
  } catch (e) {
    throw sqlError(e, step);
  }
  for (;;) {
    let chunk;
    try {
      chunk = await result.fetchChunk();
    } catch (e) {
      throw sqlError(e, step);
    }
    if (!chunk || chunk.rowCount === 0) return;
    yield chunk;
  }
}

const num = (v: unknown): number => (typeof v === "bigint" ? Number(v) : typeof v === "number" ? v : Number(v ?? 0));

/** The part folders under `partsDir`: its subfolders holding a shard.json, in shard order, all checked to agree. */
export async function readParts(partsDir: string): Promise<Array<{ dir: string; meta: PartMeta }>> {
  let names: string[];
  try {
    names = (await readdir(partsDir)).filter((n) => !n.startsWith(".")).sort();
  } catch {
    throw new UserError("no such folder", {
      file: partsDir,
      hint: 'give the folder whose subfolders the "--shard i/N --out PARTS/i" runs wrote',
    });
  }
  const parts: Array<{ dir: string; meta: PartMeta }> = [];
  for (const n of names) {
    const dir = join(partsDir, n);
    if (!(await stat(dir)).isDirectory()) continue;
    parts.push({ dir, meta: await readPartMeta(dir) });
  }
  if (parts.length === 0) throw new UserError("has no shard folders (each with a shard.json)", { file: partsDir });
  parts.sort((a, b) => a.meta.shard - b.meta.shard);
  const first = parts[0]!;
  const count = first.meta.shards;
  const at = (p: { dir: string }) => join(p.dir, "shard.json");
  for (const p of parts) {
    if (p.meta.shards !== count)
      throw new UserError(`is shard ${p.meta.shard}/${p.meta.shards}, but ${at(first)} is of ${count} shards`, { file: at(p) });
    if (JSON.stringify(p.meta.config) !== JSON.stringify(first.meta.config)) {
      throw new UserError(`was curated with another config than ${at(first)}`, {
        file: at(p),
        hint: "run every shard with the same config",
      });
    }
    if (JSON.stringify(p.meta.tokenizer) !== JSON.stringify(first.meta.tokenizer))
      throw new UserError(`used another tokenizer than ${at(first)}`, { file: at(p) });
    if (p.meta.keep_examples !== first.meta.keep_examples) {
      throw new UserError(`was run ${p.meta.keep_examples ? "with" : "without"} --format hf-parquet, unlike ${at(first)}`, {
        file: at(p),
        hint: "run every shard with the same --format",
      });
    }
  }
  for (let i = 0; i < count; i++) {
    const found = parts.filter((p) => p.meta.shard === i);
    if (found.length !== 1) {
      throw new UserError(
        found.length === 0 ? `shard ${i}/${count} is missing` : `shard ${i}/${count} appears twice (${found.map((p) => p.dir).join(", ")})`,
        {
          file: partsDir,
          hint: found.length === 0 ? `run "owntune curate --shard ${i}/${count}" and put its output here` : undefined,
        },
      );
    }
  }
  if (!first.meta.inputs) throw new UserError("shard 0 lacks the inputs' hashes", { file: at(first) });
  return parts;
}

export interface MergeOptions {
  cfg: CurateConfig & { seed: number };
  parts: Array<{ dir: string; meta: PartMeta }>;
  engine: Engine;
  /** The dataset's temporary folder, renamed into place by the caller. */
  outTmp: string;
  progress: Progress;
  log?: (line: string) => void;
  /** Also write the Hugging Face Parquet export (the parts must hold the example texts). */
  hfParquet?: boolean;
}

/** Runs the global steps over the parts and writes the dataset into `outTmp`. */
export async function mergeParts(o: MergeOptions): Promise<{ manifest: Manifest; kept: KeptList }> {
  const { cfg, parts, engine } = o;
  const first = parts[0]!.meta;

  // The per-document counts, added up in input order.
  const counters = new CurateCounters(cfg.inputs.length);
  let base = 0;
  for (const p of parts) {
    counters.addLater(p.meta.counters, base);
    base += p.meta.counters.rowsRead;
  }

  const files = (name: string) => `[${parts.map((p) => sqlString(join(p.dir, name))).join(", ")}]`;
  await runSql(
    engine,
    `CREATE VIEW examples AS SELECT * FROM read_parquet(${files("examples-*.parquet")});
     CREATE VIEW bands AS SELECT * FROM read_parquet(${files("bands-*.parquet")});
     CREATE VIEW shards AS SELECT * FROM read_parquet(${files("shard.parquet")});`,
    "reading the parts",
  );

  // Exact dedup, then near dedup as connected components of the LSH buckets.
  o.log?.("merge: exact dedup");
  await runFile(engine, "01-ids.sql");
  await runFile(engine, "02-exact-dedup.sql");
  o.log?.("merge: near dedup");
  await runFile(engine, "03-lsh-edges.sql");
  await runFile(engine, "04-labels-init.sql");
  for (let round = 0; ; round++) {
    if (round === MAX_LABEL_ROUNDS) throw new Error(`near-dedup clusters did not settle in ${MAX_LABEL_ROUNDS} rounds`);
    await runFile(engine, "05-labels-step.sql");
    const [[changed]] = (await queryRows(engine, await sqlFile("06-labels-changed.sql"), "merge-sql/06-labels-changed.sql")) as [[unknown]];
    await runFile(engine, "07-labels-swap.sql");
    if (num(changed) === 0) break;
  }
  await runFile(engine, "08-kept.sql");

  const [[exactDropped, firstExact, nearDropped, , truncated, merges]] = (await queryRows(
    engine,
    await sqlFile("09-counts.sql"),
    "merge-sql/09-counts.sql",
  )) as [unknown[]];
  counters.truncated = num(truncated);
  counters.boundaryMerges = num(merges);
  counters.dropMany("dedup_exact", "exact_duplicate", num(exactDropped), num(firstExact));
  for (const [preview, file, line] of await queryRows(engine, await sqlFile("10-exact-samples.sql"), "merge-sql/10-exact-samples.sql")) {
    counters.sample("dedup_exact", { reason: "exact_duplicate", text: String(preview), where: `${String(file)}:${num(line)}` });
  }
  counters.dropMany("dedup_near", "near_duplicate", num(nearDropped), NEAR_DEDUP_AT);
  for (const [preview, keeper] of await queryRows(engine, await sqlFile("11-near-samples.sql"), "merge-sql/11-near-samples.sql")) {
    counters.sample("dedup_near", {
      reason: "near_duplicate",
      text: String(preview),
      where: `near-duplicate of: ${String(keeper).slice(0, 120)}`,
    });
  }

  // Split and weight, on the kept list (a few bytes per example).
  o.log?.("merge: split, weights, packing");
  const kept = await readKeptList(engine);
  const plan = splitAndWeight({ count: kept.count, id: (r) => kept.id[r]!, input: (r) => kept.input[r]! }, cfg, cfg.seed);
  counters.dropMany("sampling", "weight_below_1", plan.sampledOut, Number.MAX_SAFE_INTEGER);
  if (plan.sampledOutFirst.length > 0) {
    const previews = new Map(
      (
        await queryRows(
          engine,
          `SELECT k.rnk, e.preview FROM kept k JOIN examples e ON e.shard = k.shard AND e.local_id = k.local_id WHERE k.rnk IN (${plan.sampledOutFirst.join(", ")})`,
          "sampling samples",
        )
      ).map(([r, p]) => [num(r), String(p)]),
    );
    for (const r of plan.sampledOutFirst) counters.sample("sampling", { reason: "weight_below_1", text: previews.get(r)! });
  }

  if (plan.train.length === 0) throw emptyDatasetError(counters);
  // Packing plans, then each example's place (row, slot) for DuckDB to sort the tokens by.
  const splitRanks: Record<SplitName, Uint32Array> = { train: plan.train, val: plan.val };
  const plans = {} as Record<SplitName, { plan: ReturnType<typeof planRows>; lengths: Int32Array; trained: Int32Array }>;
  await runSql(engine, "CREATE TABLE placement (split_index INTEGER, rnk BIGINT, row_idx BIGINT, slot INTEGER);", "placement");
  const appender = await engine.db.createAppender("placement");
  (["train", "val"] as const).forEach((name, splitIndex) => {
    const ranks = splitRanks[name];
    const lengths = Int32Array.from(ranks, (r) => kept.length[r]!);
    const p = planRows(lengths, cfg.seq_len, cfg.packing, { shuffleSeed: cfg.seed ^ (name === "train" ? TRAIN_SALT : VAL_SALT) });
    plans[name] = { plan: p, lengths, trained: Int32Array.from(ranks, (r) => kept.trained[r]!) };
    for (let row = 0; row + 1 < p.rowStart.length; row++) {
      for (let j = p.rowStart[row]!; j < p.rowStart[row + 1]!; j++) {
        appender.appendInteger(splitIndex);
        appender.appendBigInt(BigInt(ranks[p.items[j]!]!));
        appender.appendBigInt(BigInt(row));
        appender.appendInteger(j - p.rowStart[row]!);
        appender.endRow();
      }
    }
  });
  appender.closeSync();

  o.log?.("merge: writing shards");
  const stream = new RowStream(engine, await sqlFile("13-rows.sql"), cfg.seq_len, first.pad_id);
  const splitData = (name: SplitName, index: number): SplitData => ({ ...plans[name], rows: () => stream.rowsOf(index) });
  const manifest = await writeDataset(o.outTmp, {
    cfg,
    seed: cfg.seed,
    padId: first.pad_id,
    tokenizer: first.tokenizer,
    inputs: first.inputs!,
    counters,
    examplesKept: kept.count,
    splits: { train: splitData("train", 0), val: splitData("val", 1) },
    hfExport: o.hfParquet ? (dir) => exportHf(engine, dir, plan.train, plan.val) : undefined,
  });
  return { manifest, kept };
}

/** The examples of each split, in split order, from the parts into Hugging Face Parquet files. */
async function exportHf(engine: Engine, dir: string, train: Uint32Array, val: Uint32Array): Promise<Record<HfSplit, string[]>> {
  await runSql(engine, "CREATE TABLE hf_order (split_index INTEGER, pos BIGINT, rnk BIGINT);", "the Parquet export");
  const a = await engine.db.createAppender("hf_order");
  [train, val].forEach((ranks, s) =>
    ranks.forEach((r, pos) => {
      a.appendInteger(s);
      a.appendBigInt(BigInt(pos));
      a.appendBigInt(BigInt(r));
      a.endRow();
    }),
  );
  a.closeSync();
  const w = await HfParquetWriter.open(engine, dir, { train: train.length, validation: val.length });
  const sql = `SELECT o.split_index, e.example, e.ids, e.mask FROM hf_order o JOIN kept k ON k.rnk = o.rnk
               JOIN examples e ON e.shard = k.shard AND e.local_id = k.local_id ORDER BY o.split_index, o.pos`;
  for await (const chunk of queryChunks(engine, sql, "the Parquet export")) {
    const [split, example, ids, mask] = [0, 1, 2, 3].map((c) => chunk.getColumnValues(c));
    for (let j = 0; j < chunk.rowCount; j++) {
      const idBytes = (ids![j] as DuckDBBlobValue).bytes;
      await w.add(
        num(split![j]) === 0 ? "train" : "validation",
        String(example![j]),
        new Int32Array(idBytes.buffer.slice(idBytes.byteOffset, idBytes.byteOffset + idBytes.byteLength)),
        (mask![j] as DuckDBBlobValue).bytes,
      );
    }
  }
  return w.finish();
}

/** The kept examples by rank: row index, input, tokens, trained tokens (18 bytes each). */
export interface KeptList {
  count: number;
  id: Float64Array;
  input: Uint16Array;
  length: Int32Array;
  trained: Int32Array;
}

async function readKeptList(engine: Engine): Promise<KeptList> {
  const [[n]] = (await queryRows(engine, "SELECT COUNT(*) FROM kept", "the kept list")) as [[unknown]];
  const count = num(n);
  const kept: KeptList = {
    count,
    id: new Float64Array(count),
    input: new Uint16Array(count),
    length: new Int32Array(count),
    trained: new Int32Array(count),
  };
  let at = 0;
  for await (const chunk of queryChunks(engine, await sqlFile("12-kept-list.sql"), "merge-sql/12-kept-list.sql")) {
    const [id, input, length, trained] = [0, 1, 2, 3].map((c) => chunk.getColumnVector(c));
    for (let j = 0; j < chunk.rowCount; j++, at++) {
      kept.id[at] = num(id!.getItem(j));
      kept.input[at] = num(input!.getItem(j));
      kept.length[at] = num(length!.getItem(j));
      kept.trained[at] = num(trained!.getItem(j));
    }
  }
  return kept;
}

/** The rows of 13-rows.sql, split by split: each split's rows are read in turn from one stream. */
class RowStream {
  private readonly chunks: AsyncGenerator<DuckDBDataChunk>;
  private chunk: DuckDBDataChunk | undefined;
  private cols: { split: unknown[]; row: unknown[]; ids: unknown[]; mask: unknown[] } | undefined;
  private at = 0;
  private ended = false;

  constructor(
    engine: Engine,
    sql: string,
    private readonly seqLen: number,
    private readonly padId: number,
  ) {
    this.chunks = queryChunks(engine, sql, "merge-sql/13-rows.sql");
  }

  /** The next item's split index, or undefined at the end. */
  private async peek(): Promise<number | undefined> {
    while (!this.ended && (!this.chunk || this.at >= this.chunk.rowCount)) {
      const next = await this.chunks.next();
      if (next.done) {
        this.ended = true;
        this.chunk = undefined;
        this.cols = undefined;
        break;
      }
      this.chunk = next.value;
      this.at = 0;
      this.cols = {
        split: this.chunk.getColumnValues(0),
        row: this.chunk.getColumnValues(1),
        ids: this.chunk.getColumnValues(3),
        mask: this.chunk.getColumnValues(4),
      };
    }
    return this.cols ? num(this.cols.split[this.at]) : undefined;
  }

  async *rowsOf(split: number): AsyncGenerator<PackedRow> {
    let items: PackItem[] = [];
    let row = -1;
    for (;;) {
      const s = await this.peek();
      if (s !== split) break;
      const c = this.cols!;
      const r = num(c.row[this.at]);
      if (r !== row && items.length > 0) {
        yield buildRow(items, this.seqLen, this.padId);
        items = [];
      }
      row = r;
      const ids = (c.ids[this.at] as DuckDBBlobValue).bytes;
      const mask = (c.mask[this.at] as DuckDBBlobValue).bytes;
      items.push({ ids: new Int32Array(ids.buffer.slice(ids.byteOffset, ids.byteOffset + ids.byteLength)), mask });
      this.at++;
    }
    if (items.length > 0) yield buildRow(items, this.seqLen, this.padId);
  }
}
