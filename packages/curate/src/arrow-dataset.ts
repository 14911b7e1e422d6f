// Arrow IPC shards of a curated dataset (`train-00000.arrow`, …): four FixedSizeList<int32>[seq_len]
// columns, written in record batches through apache-arrow, and read back batch by batch.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import {
  DataType,
  Field,
  FixedSizeList,
  Int32,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  tableFromIPC,
} from "apache-arrow";
import { openAtomic, UserError, type AtomicFile } from "@owntune/core";
import { arrowIpcProblem, bufferSource } from "./arrow-ipc-check.js";
import { DATASET_FORMAT_VERSION } from "./manifest.js";
import { batchProblem } from "./readers/arrow.js";
import type { PackedRow } from "./pack.js";

export const COLUMN_NAMES = ["input_ids", "loss_mask", "position_ids", "segment_ids"] as const;
export type ColumnName = (typeof COLUMN_NAMES)[number];

/** Rows per Arrow record batch inside a shard (bounds the memory of one batch). */
const ROWS_PER_RECORD_BATCH = 1024;

function listType(seqLen: number): FixedSizeList<Int32> {
  return new FixedSizeList(seqLen, new Field("item", new Int32(), false));
}

export function shardSchema(seqLen: number): Schema {
  return new Schema(
    COLUMN_NAMES.map((n) => new Field(n, listType(seqLen), false)),
    new Map([
      ["owntune.format_version", String(DATASET_FORMAT_VERSION)],
      ["owntune.seq_len", String(seqLen)],
    ]),
  );
}

function batchOf(rows: readonly PackedRow[], seqLen: number, schema: Schema): RecordBatch {
  const children = COLUMN_NAMES.map((name) => {
    const flat = new Int32Array(rows.length * seqLen);
    rows.forEach((r, i) => flat.set(r[name], i * seqLen));
    return makeData({ type: listType(seqLen), length: rows.length, nullCount: 0, child: makeData({ type: new Int32(), data: flat }) });
  });
  const data = makeData({ type: new Struct(schema.fields), length: rows.length, nullCount: 0, children });
  return new RecordBatch(schema, data);
}

function emptyBatch(seqLen: number, schema: Schema): RecordBatch {
  const children = COLUMN_NAMES.map(() =>
    makeData({ type: listType(seqLen), length: 0, nullCount: 0, child: makeData({ type: new Int32(), data: new Int32Array(0) }) }),
  );
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 0, nullCount: 0, children }));
}

/**
 * One shard being written row by row, in record batches of ROWS_PER_RECORD_BATCH rows, under a
 * temporary name until `close` (so at most one batch of rows is held). `abort` removes it.
 */
export class ShardWriter {
  private readonly schema: Schema;
  private readonly writer = new RecordBatchFileWriter();
  private readonly pending: PackedRow[] = [];
  private readonly drained: Promise<void>;
  private readonly hash = createHash("sha256");
  private rowCount = 0;

  private constructor(
    private readonly file: AtomicFile,
    private readonly seqLen: number,
  ) {
    this.schema = shardSchema(seqLen);
    this.drained = (async () => {
      for await (const chunk of this.writer) {
        this.hash.update(chunk);
        await file.write(chunk);
      }
    })();
    this.drained.catch(() => undefined); // awaited in close
  }

  static async open(path: string, seqLen: number): Promise<ShardWriter> {
    return new ShardWriter(await openAtomic(path), seqLen);
  }

  get rows(): number {
    return this.rowCount;
  }

  add(row: PackedRow): void {
    this.pending.push(row);
    this.rowCount++;
    if (this.pending.length === ROWS_PER_RECORD_BATCH) this.flush();
  }

  private flush(): void {
    this.writer.write(batchOf(this.pending, this.seqLen, this.schema));
    this.pending.length = 0;
  }

  /** Finishes the file and renames it into place; returns its size in bytes and its sha256. */
  async close(): Promise<{ bytes: number; sha256: string }> {
    try {
      if (this.rowCount === 0) this.writer.write(emptyBatch(this.seqLen, this.schema));
      if (this.pending.length > 0) this.flush();
      this.writer.finish();
      await this.drained;
      await this.file.commit();
      return { bytes: this.file.bytesWritten, sha256: this.hash.digest("hex") };
    } catch (e) {
      await this.file.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    this.writer.abort();
    await this.drained.catch(() => undefined);
    await this.file.abort();
  }
}

/** Writes `rows` as one Arrow IPC file (atomically: nothing under `path` unless it completes); its size and sha256. */
export async function writeShard(path: string, rows: readonly PackedRow[], seqLen: number): Promise<{ bytes: number; sha256: string }> {
  const w = await ShardWriter.open(path, seqLen);
  for (const r of rows) w.add(r);
  return w.close();
}

/** A shard in memory: flat [rows × seq_len] int32 columns. */
export interface ShardData {
  rows: number;
  seqLen: number;
  columns: Record<ColumnName, Int32Array>;
}

/** What manifest.json records of a shard: its size and content hash, checked before anything is parsed. */
export interface ShardRecord {
  bytes: number;
  sha256: string;
}

/** A shard whose size is not the manifest's: truncated, or replaced. */
export function shardSizeError(path: string, size: number, recorded: number): UserError {
  return new UserError(`is ${size} bytes, manifest.json says ${recorded}: the shard was truncated or changed after curate wrote it`, {
    file: path,
    hint: 're-run "owntune curate"',
  });
}

/**
 * Reads a shard and checks it: size and sha256 against `expected` (the manifest's record, so a flipped
 * byte is caught before it can train), then its schema (column names, types, seq_len, format version).
 */
export async function readShard(path: string, seqLen: number, expected?: ShardRecord): Promise<ShardData> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === "ENOENT" ? "shard listed in manifest.json is missing" : `cannot read (${code})`, {
      file: path,
      hint: 're-run "owntune curate"',
    });
  }
  if (expected) {
    if (bytes.length !== expected.bytes) throw shardSizeError(path, bytes.length, expected.bytes);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (sha256 !== expected.sha256) {
      throw new UserError(
        `sha256 ${sha256.slice(0, 16)}… differs from manifest.json's ${expected.sha256.slice(0, 16)}…: the shard's bytes changed after curate wrote it`,
        {
          file: path,
          hint: 're-run "owntune curate" (the disk may be failing if this happens again)',
        },
      );
    }
  }
  const problem = await arrowIpcProblem(bufferSource(bytes));
  if (problem) throw new UserError(`not a readable Arrow IPC file: ${problem}`, { file: path });
  let table;
  try {
    table = tableFromIPC(bytes);
    if (!table.schema) throw new Error("no schema");
  } catch {
    throw new UserError("not a readable Arrow IPC file (corrupt or truncated)", { file: path });
  }
  const version = table.schema.metadata.get("owntune.format_version");
  if (version !== String(DATASET_FORMAT_VERSION)) {
    throw new UserError(`dataset format ${version ?? "unknown"}, this owntune reads ${DATASET_FORMAT_VERSION}`, {
      file: path,
      hint: 're-run "owntune curate"',
    });
  }
  for (const batch of table.batches) {
    const problem = batchProblem(batch);
    if (problem) throw new UserError(`corrupt record batch: ${problem}`, { file: path });
  }
  // Every row stores seqLen int32s per column: a row count the file's size cannot hold is a corrupt header.
  if (table.numRows * seqLen * 4 * COLUMN_NAMES.length > bytes.length) {
    throw new UserError(`claims ${table.numRows} rows of ${seqLen} tokens, more than its ${bytes.length} bytes can hold (corrupt)`, {
      file: path,
    });
  }
  const columns = {} as Record<ColumnName, Int32Array>;
  for (const name of COLUMN_NAMES) {
    const col = table.getChild(name);
    // Type ids, not instanceof: a second copy of apache-arrow in the process must still pass.
    const type = col?.type as FixedSizeList | undefined;
    const item = type?.children?.[0]?.type;
    if (
      !col ||
      !DataType.isFixedSizeList(type) ||
      type.listSize !== seqLen ||
      !DataType.isInt(item) ||
      item.bitWidth !== 32 ||
      !item.isSigned
    ) {
      throw new UserError(`column ${name} must be FixedSizeList<int32>[${seqLen}]`, { file: path, field: name });
    }
    const flat = new Int32Array(table.numRows * seqLen);
    let at = 0;
    for (const data of col.data) {
      const child = data.children[0]!;
      const values = (child.values as Int32Array).subarray(
        child.offset + data.offset * seqLen,
        child.offset + data.offset * seqLen + data.length * seqLen,
      );
      if (values.length !== data.length * seqLen || at + values.length > flat.length) {
        throw new UserError(`column ${name} holds fewer values than its ${data.length} rows need (corrupt)`, { file: path, field: name });
      }
      flat.set(values, at);
      at += values.length;
    }
    columns[name] = flat;
  }
  return { rows: table.numRows, seqLen, columns };
}
