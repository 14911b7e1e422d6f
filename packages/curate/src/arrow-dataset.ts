// Arrow IPC shards of a curated dataset (`train-00000.arrow`, …): four FixedSizeList<int32>[seq_len]
// columns, written in record batches through apache-arrow, and read back batch by batch.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { DataType, Field, FixedSizeList, Int32, makeData, RecordBatch, RecordBatchFileWriter, Schema, Struct, tableFromIPC } from "apache-arrow";
import { UserError, withAtomicFile } from "@owntune/model";
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

/** Writes `rows` as one Arrow IPC file (atomically: nothing under `path` unless it completes); its size and sha256. */
export async function writeShard(path: string, rows: readonly PackedRow[], seqLen: number): Promise<{ bytes: number; sha256: string }> {
  const schema = shardSchema(seqLen);
  const hash = createHash("sha256");
  return withAtomicFile(path, async (file) => {
    const writer = new RecordBatchFileWriter();
    const drained = (async () => {
      for await (const chunk of writer) {
        hash.update(chunk);
        await file.write(chunk);
      }
    })();
    if (rows.length === 0) writer.write(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: 0, nullCount: 0, children: COLUMN_NAMES.map(() => makeData({ type: listType(seqLen), length: 0, nullCount: 0, child: makeData({ type: new Int32(), data: new Int32Array(0) }) })) })));
    for (let i = 0; i < rows.length; i += ROWS_PER_RECORD_BATCH) {
      writer.write(batchOf(rows.slice(i, i + ROWS_PER_RECORD_BATCH), seqLen, schema));
    }
    writer.finish();
    await drained;
    return { bytes: file.bytesWritten, sha256: hash.digest("hex") };
  });
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
  return new UserError(`is ${size} bytes, manifest.json says ${recorded}: the shard was truncated or changed after curate wrote it`, { file: path, hint: 're-run "owntune curate"' });
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
    throw new UserError(code === "ENOENT" ? "shard listed in manifest.json is missing" : `cannot read (${code})`, { file: path, hint: 're-run "owntune curate"' });
  }
  if (expected) {
    if (bytes.length !== expected.bytes) throw shardSizeError(path, bytes.length, expected.bytes);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (sha256 !== expected.sha256) {
      throw new UserError(`sha256 ${sha256.slice(0, 16)}… differs from manifest.json's ${expected.sha256.slice(0, 16)}…: the shard's bytes changed after curate wrote it`, {
        file: path,
        hint: 're-run "owntune curate" (the disk may be failing if this happens again)',
      });
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
    throw new UserError(`claims ${table.numRows} rows of ${seqLen} tokens, more than its ${bytes.length} bytes can hold (corrupt)`, { file: path });
  }
  const columns = {} as Record<ColumnName, Int32Array>;
  for (const name of COLUMN_NAMES) {
    const col = table.getChild(name);
    // Type ids, not instanceof: a second copy of apache-arrow in the process must still pass.
    const type = col?.type as FixedSizeList | undefined;
    const item = type?.children?.[0]?.type;
    if (!col || !DataType.isFixedSizeList(type) || type.listSize !== seqLen || !DataType.isInt(item) || item.bitWidth !== 32 || !item.isSigned) {
      throw new UserError(`column ${name} must be FixedSizeList<int32>[${seqLen}]`, { file: path, field: name });
    }
    const flat = new Int32Array(table.numRows * seqLen);
    let at = 0;
    for (const data of col.data) {
      const child = data.children[0]!;
      const values = (child.values as Int32Array).subarray((child.offset + data.offset * seqLen), (child.offset + data.offset * seqLen) + data.length * seqLen);
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
