// Arrow IPC reader through apache-arrow: both the file format (`.arrow` with the ARROW1 magic) and
// the stream format that the Hugging Face `datasets` library writes as `data-0000x-of-0000n.arrow`.
// Record batches are read one at a time.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { DataType, RecordBatchReader, type Data, type RecordBatch } from "apache-arrow";
import { UserError } from "@owntune/core";
import { arrowIpcProblem, fileSource } from "../arrow-ipc-check.js";
import { toPlain, type SourceRow } from "./source-row.js";
import { invalidUtf8Error, invalidUtf8Rows } from "./utf8-check.js";

/** Streams an Arrow IPC file or stream, batch by batch. */
export async function* readArrow(path: string, displayName = path): AsyncGenerator<SourceRow> {
  const fh = await open(path, "r");
  let problem: string | undefined;
  try {
    problem = await arrowIpcProblem(fileSource(fh, (await fh.stat()).size));
  } finally {
    await fh.close();
  }
  if (problem) throw new UserError(`not a readable Arrow IPC file or stream: ${problem}`, { file: displayName });
  let reader;
  try {
    reader = await RecordBatchReader.from(createReadStream(path));
    await reader.open();
  } catch {
    throw new UserError("not a readable Arrow IPC file or stream (corrupt or truncated)", { file: displayName });
  }
  let line = 0;
  for await (const batch of reader) {
    const problem = batchProblem(batch);
    if (problem) throw new UserError(`corrupt record batch: ${problem}`, { file: displayName, line: line + 1 });
    const names = batch.schema.fields.map((f) => f.name);
    const columns = names.map((_, c) => batch.getChildAt(c));
    const bytesPerRow = batch.data.byteLength / Math.max(batch.numRows, 1);
    const invalid = invalidUtf8Rows(batch);
    for (let i = 0; i < batch.numRows; i++) {
      const bad = invalid.get(i);
      if (bad) {
        line++;
        yield { file: displayName, line, value: undefined, error: invalidUtf8Error(bad), bytes: bytesPerRow };
        continue;
      }
      const value: Record<string, unknown> = {};
      for (let c = 0; c < names.length; c++) value[names[c]!] = toPlain(columns[c]?.get(i));
      line++;
      yield { file: displayName, line, value, bytes: bytesPerRow };
    }
  }
}

/**
 * What is wrong with a record batch whose buffers do not hold what its lengths and offsets say, or
 * undefined. Checked before any row is read: a corrupt length or offset must not steer reads past the
 * buffers, loops over billions of rows, or allocations (apache-arrow trusts them as written).
 */
export function batchProblem(batch: RecordBatch): string | undefined {
  for (let c = 0; c < batch.schema.fields.length; c++) {
    const name = batch.schema.fields[c]!.name;
    let rows = 0;
    for (const d of batch.getChildAt(c)?.data ?? []) {
      const problem = dataProblem(d, name);
      if (problem) return problem;
      rows += d.length;
    }
    if (rows !== batch.numRows) return `column ${name} has ${rows} rows, the batch ${batch.numRows}`;
  }
  return undefined;
}

function dataProblem(d: Data, path: string): string | undefined {
  const end = d.offset + d.length;
  if (!Number.isSafeInteger(end) || d.offset < 0 || d.length < 0) return `${path}: length ${d.length} at offset ${d.offset}`;
  if (d.nullCount > 0 && d.nullBitmap && d.nullBitmap.length > 0 && d.nullBitmap.length * 8 < end)
    return `${path}: validity bitmap shorter than its ${end} values`;
  const type = d.type;
  const offsetsWithin = (limit: number): string | undefined => {
    const o = d.valueOffsets as ArrayLike<number | bigint> | undefined;
    if (!o || o.length < end + 1) return `${path}: ${o?.length ?? 0} offsets for ${d.length} values`;
    let prev = Number(o[d.offset]);
    if (!(prev >= 0)) return `${path}: negative offset`;
    for (let i = d.offset + 1; i <= end; i++) {
      const cur = Number(o[i]);
      if (!(cur >= prev)) return `${path}: offsets go backwards at value ${i - 1}`;
      prev = cur;
    }
    return prev > limit ? `${path}: offset ${prev} past the ${limit} values it indexes` : undefined;
  };
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type) || DataType.isBinary(type) || DataType.isLargeBinary(type)) {
    return offsetsWithin((d.values as Uint8Array | undefined)?.length ?? 0);
  }
  if (DataType.isList(type) || DataType.isLargeList(type) || DataType.isMap(type)) {
    const child = d.children[0];
    if (!child) return `${path}: list without values`;
    return offsetsWithin(child.length) ?? dataProblem(child, `${path}[]`);
  }
  if (DataType.isFixedSizeList(type)) {
    const child = d.children[0];
    if (!child || child.length < end * type.listSize) return `${path}: fewer values than ${d.length} lists of ${type.listSize}`;
    return dataProblem(child, `${path}[]`);
  }
  if (DataType.isStruct(type)) {
    for (let k = 0; k < d.children.length; k++) {
      const child = d.children[k]!;
      const name = `${path}.${type.children[k]?.name ?? k}`;
      if (child.length < end) return `${name}: ${child.length} values for ${end} rows`;
      const problem = dataProblem(child, name);
      if (problem) return problem;
    }
    return undefined;
  }
  if (DataType.isBool(type))
    return ((d.values as Uint8Array | undefined)?.length ?? 0) * 8 < end ? `${path}: fewer values than rows` : undefined;
  const values = d.values as ArrayLike<unknown> | undefined;
  if (values && !DataType.isNull(type) && values.length < end * d.stride) return `${path}: ${values.length} values for ${d.length} rows`;
  return undefined;
}
