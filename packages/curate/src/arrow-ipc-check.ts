// Checks an Arrow IPC file or stream's metadata before apache-arrow reads it: apache-arrow trusts the
// flatbuffer vector lengths and the record-batch lengths as written, so one corrupt length makes it
// build billions of objects or loop without end. Every message's flatbuffer (Message, Schema, Field,
// RecordBatch, DictionaryBatch) and the file footer are verified, tables and vectors inside their
// bytes, and lengths against the body they describe. Reference: arrow/format/{Message,Schema,File}.fbs.
import type { FileHandle } from "node:fs/promises";

/** Random access to the bytes being checked (a file, or a buffer in memory). */
export interface ByteSource {
  size: number;
  read(position: number, length: number): Promise<Uint8Array>;
}

export function bufferSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: async (p, n) => bytes.subarray(p, p + n) };
}

export function fileSource(fh: FileHandle, size: number): ByteSource {
  return {
    size,
    async read(p, n) {
      const out = new Uint8Array(n);
      const { bytesRead } = await fh.read(out, 0, n, p);
      return out.subarray(0, bytesRead);
    },
  };
}

const MAGIC = "ARROW1";
/** Flatbuffer tables nest this deep at most (Field children): deeper is a corrupt or hostile file. */
const MAX_DEPTH = 64;

// A small description of the flatbuffer tables to verify: per field index, what it holds.
type FieldSpec =
  | { kind: "scalar"; size: number }
  | { kind: "string" }
  | { kind: "structs"; size: number } // vector of structs (or scalars) of `size` bytes
  | { kind: "table"; table: () => TableSpec }
  | { kind: "tables"; table: () => TableSpec }
  | { kind: "union"; typeField: number; tables: (type: number) => TableSpec | undefined };
type TableSpec = Record<number, FieldSpec>;

const keyValue: TableSpec = { 0: { kind: "string" }, 1: { kind: "string" } };
const anyType: TableSpec = {}; // type tables (Int, Utf8, …): fields are scalars, checked for their table's bounds only
const typeTable = (type: number): TableSpec | undefined =>
  type === 10
    ? { 1: { kind: "string" } } /* Timestamp.timezone */
    : type === 14
      ? { 1: { kind: "structs", size: 4 } } /* Union.typeIds */
      : anyType;
const dictionaryEncoding: TableSpec = { 0: { kind: "scalar", size: 8 }, 1: { kind: "table", table: () => anyType } };
const field: TableSpec = {
  0: { kind: "string" },
  1: { kind: "scalar", size: 1 },
  2: { kind: "scalar", size: 1 },
  3: { kind: "union", typeField: 2, tables: typeTable },
  4: { kind: "table", table: () => dictionaryEncoding },
  5: { kind: "tables", table: () => field },
  6: { kind: "tables", table: () => keyValue },
};
const schema: TableSpec = {
  0: { kind: "scalar", size: 2 },
  1: { kind: "tables", table: () => field },
  2: { kind: "tables", table: () => keyValue },
  3: { kind: "structs", size: 8 },
};
const recordBatch: TableSpec = {
  0: { kind: "scalar", size: 8 },
  1: { kind: "structs", size: 16 }, // FieldNode { length: long, null_count: long }
  2: { kind: "structs", size: 16 }, // Buffer { offset: long, length: long }
  3: { kind: "table", table: () => anyType },
  4: { kind: "structs", size: 8 },
};
const dictionaryBatch: TableSpec = {
  0: { kind: "scalar", size: 8 },
  1: { kind: "table", table: () => recordBatch },
  2: { kind: "scalar", size: 1 },
};
const message: TableSpec = {
  0: { kind: "scalar", size: 2 },
  1: { kind: "scalar", size: 1 },
  2: { kind: "union", typeField: 1, tables: (t) => (t === 1 ? schema : t === 2 ? dictionaryBatch : t === 3 ? recordBatch : undefined) },
  3: { kind: "scalar", size: 8 },
  4: { kind: "tables", table: () => keyValue },
};
const footer: TableSpec = {
  0: { kind: "scalar", size: 2 },
  1: { kind: "table", table: () => schema },
  2: { kind: "structs", size: 24 }, // Block { offset: long, metaDataLength: int, bodyLength: long }
  3: { kind: "structs", size: 24 },
  4: { kind: "tables", table: () => keyValue },
};

class Corrupt extends Error {}

/** A verified flatbuffer: field positions of a table, read only after their bounds were checked. */
class Flat {
  private readonly view: DataView;
  /** Tables left to visit: distinct tables take at least 4 bytes each, so more visits mean offsets that loop back. */
  private budget: number;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.budget = buf.length / 4 + 64;
  }
  need(pos: number, n: number, what: string): void {
    if (!(pos >= 0 && n >= 0 && pos + n <= this.buf.length)) throw new Corrupt(`${what} lies outside the metadata`);
  }
  u8 = (p: number) => (this.need(p, 1, "a field"), this.view.getUint8(p));
  u16 = (p: number) => (this.need(p, 2, "a field"), this.view.getUint16(p, true));
  i32 = (p: number) => (this.need(p, 4, "a field"), this.view.getInt32(p, true));
  u32 = (p: number) => (this.need(p, 4, "a field"), this.view.getUint32(p, true));
  i64 = (p: number) => (this.need(p, 8, "a field"), Number(this.view.getBigInt64(p, true)));

  /** Position of field `i` of the table at `table`, or undefined when absent. */
  fieldPos(table: number, i: number): number | undefined {
    const vtable = table - this.i32(table);
    const vlen = this.u16(vtable);
    if (vlen < 4 || vlen % 2 !== 0) throw new Corrupt("a table's vtable is malformed");
    this.need(vtable, vlen, "a vtable");
    this.need(table, this.u16(vtable + 2), "a table");
    if (4 + 2 * i >= vlen) return undefined;
    const off = this.u16(vtable + 4 + 2 * i);
    return off === 0 ? undefined : table + off;
  }

  /** Where the offset stored at `pos` points. */
  target(pos: number): number {
    const t = pos + this.u32(pos);
    this.need(t, 4, "an offset's target");
    return t;
  }

  verify(table: number, spec: TableSpec, depth: number): void {
    if (depth > MAX_DEPTH) throw new Corrupt(`tables nested more than ${MAX_DEPTH} deep`);
    if (--this.budget < 0) throw new Corrupt("the metadata's tables refer to each other in a loop");
    for (const [key, f] of Object.entries(spec)) {
      const pos = this.fieldPos(table, Number(key));
      if (pos === undefined) continue;
      switch (f.kind) {
        case "scalar":
          this.need(pos, f.size, "a scalar field");
          break;
        case "string": {
          const t = this.target(pos);
          this.need(t + 4, this.u32(t) + 1, "a string");
          break;
        }
        case "structs": {
          const t = this.target(pos);
          this.need(t + 4, this.u32(t) * f.size, "a vector");
          break;
        }
        case "tables": {
          const t = this.target(pos);
          const n = this.u32(t);
          this.need(t + 4, n * 4, "a vector");
          for (let k = 0; k < n; k++) this.verify(this.target(t + 4 + 4 * k), f.table(), depth + 1);
          break;
        }
        case "table":
          this.verify(this.target(pos), f.table(), depth + 1);
          break;
        case "union": {
          const typePos = this.fieldPos(table, f.typeField);
          const type = typePos === undefined ? 0 : this.u8(typePos);
          const sub = f.tables(type);
          if (sub) this.verify(this.target(pos), sub, depth + 1);
          break;
        }
      }
    }
  }

  root(): number {
    return this.target(0);
  }
}

/** What one message says about itself, once verified. */
interface MessageInfo {
  headerType: number;
  bodyLength: number;
}

/** MessageHeader union values apache-arrow reads: Schema, DictionaryBatch, RecordBatch (Tensor and SparseTensor are not data). */
const HEADER_NAMES: Record<number, string> = { 1: "Schema", 2: "DictionaryBatch", 3: "RecordBatch" };

function checkMessage(meta: Uint8Array, expected?: number): MessageInfo {
  const fb = new Flat(meta);
  const root = fb.root();
  fb.verify(root, message, 0);
  const typePos = fb.fieldPos(root, 1);
  const headerType = typePos === undefined ? 0 : fb.u8(typePos);
  if (!(headerType in HEADER_NAMES)) throw new Corrupt(`a message of unknown type ${headerType}`);
  if (expected !== undefined && headerType !== expected)
    throw new Corrupt(`a footer block points to a ${HEADER_NAMES[headerType]} message, not a ${HEADER_NAMES[expected]}`);
  const headerPos = fb.fieldPos(root, 2);
  if (headerPos === undefined) throw new Corrupt(`a ${HEADER_NAMES[headerType]} message without its header`);
  const bodyPos = fb.fieldPos(root, 3);
  const bodyLength = bodyPos === undefined ? 0 : fb.i64(bodyPos);
  if (!(bodyLength >= 0) || !Number.isSafeInteger(bodyLength)) throw new Corrupt(`body length ${bodyLength}`);
  if (headerType === 3 || headerType === 2) {
    let batch = fb.target(headerPos);
    if (headerType === 2) {
      const dataPos = fb.fieldPos(batch, 1);
      if (dataPos === undefined) return { headerType, bodyLength };
      batch = fb.target(dataPos);
    }
    checkBatchLengths(fb, batch, bodyLength);
  }
  return { headerType, bodyLength };
}

/**
 * A record batch's row count and node lengths against its body: every value takes at least a bit of
 * some buffer (a validity bit, an offset, a value), so lengths beyond 8 × the body are corrupt; and
 * every buffer lies inside the body.
 */
function checkBatchLengths(fb: Flat, batch: number, bodyLength: number): void {
  const limit = bodyLength * 8 + 64;
  const lengthPos = fb.fieldPos(batch, 0);
  const rows = lengthPos === undefined ? 0 : fb.i64(lengthPos);
  if (!(rows >= 0 && rows <= limit)) throw new Corrupt(`a record batch claims ${rows} rows in a body of ${bodyLength} bytes`);
  const nodesPos = fb.fieldPos(batch, 1);
  if (nodesPos !== undefined) {
    const t = fb.target(nodesPos);
    for (let k = 0, n = fb.u32(t); k < n; k++) {
      const length = fb.i64(t + 4 + 16 * k);
      const nulls = fb.i64(t + 4 + 16 * k + 8);
      if (!(length >= 0 && length <= limit && nulls >= 0 && nulls <= length))
        throw new Corrupt(`a column claims ${length} values (${nulls} null) in a body of ${bodyLength} bytes`);
    }
  }
  const buffersPos = fb.fieldPos(batch, 2);
  if (buffersPos !== undefined) {
    const t = fb.target(buffersPos);
    for (let k = 0, n = fb.u32(t); k < n; k++) {
      const offset = fb.i64(t + 4 + 16 * k);
      const length = fb.i64(t + 4 + 16 * k + 8);
      if (!(offset >= 0 && length >= 0 && offset + length <= bodyLength))
        throw new Corrupt(`a buffer [${offset}, +${length}) lies outside the ${bodyLength}-byte body`);
    }
  }
}

/**
 * Verifies every message's metadata (and, in the file format, the footer) of an Arrow IPC file or
 * stream. Returns a description of the first problem, or undefined when apache-arrow may read it.
 */
export async function arrowIpcProblem(src: ByteSource): Promise<string | undefined> {
  try {
    await checkAll(src);
    return undefined;
  } catch (e) {
    if (e instanceof Corrupt) return e.message;
    throw e;
  }
}

async function checkAll(src: ByteSource): Promise<void> {
  const head = await src.read(0, Math.min(8, src.size));
  let pos = 0;
  let end = src.size;
  if (Buffer.from(head.subarray(0, 6)).toString("latin1") === MAGIC) {
    // File format: "ARROW1\0\0", messages, footer, int32 footer length, "ARROW1".
    if (src.size < 18) throw new Corrupt("too short for an Arrow IPC file");
    const tail = await src.read(src.size - 10, 10);
    if (Buffer.from(tail.subarray(4)).toString("latin1") !== MAGIC)
      throw new Corrupt("the file does not end with the ARROW1 magic (truncated?)");
    const footerLength = new DataView(tail.buffer, tail.byteOffset, 4).getInt32(0, true);
    const footerStart = src.size - 10 - footerLength;
    if (!(footerLength > 0 && footerStart >= 8)) throw new Corrupt(`footer length ${footerLength} does not fit the file`);
    const fb = new Flat(await src.read(footerStart, footerLength));
    const root = fb.root();
    fb.verify(root, footer, 0);
    // The reader goes to the messages through these blocks, not in file order: each is checked where it points.
    for (const [field, type] of [
      [2, 2],
      [3, 3],
    ] as const) {
      const p = fb.fieldPos(root, field);
      if (p === undefined) continue;
      const t = fb.target(p);
      for (let k = 0, n = fb.u32(t); k < n; k++) {
        const offset = fb.i64(t + 4 + 24 * k);
        const metaLength = fb.i32(t + 4 + 24 * k + 8);
        const bodyLength = fb.i64(t + 4 + 24 * k + 16);
        if (!(offset >= 8 && metaLength > 0 && bodyLength >= 0 && offset + metaLength + bodyLength <= footerStart))
          throw new Corrupt("a footer block points outside the file");
        const block = await readMessage(src, offset, offset + metaLength, type);
        if (block === undefined || block.bodyLength !== bodyLength)
          throw new Corrupt("a footer block does not match the message it points to");
      }
    }
    pos = 8;
    end = footerStart;
  }
  while (pos + 4 <= end) {
    const info = await readMessage(src, pos, end);
    if (info === undefined) return; // end of stream
    pos = info.next;
  }
}

/**
 * The message at `pos` (continuation marker, metadata length, flatbuffer, body), checked to lie
 * before `end`; undefined at the end-of-stream marker.
 */
async function readMessage(
  src: ByteSource,
  pos: number,
  end: number,
  expected?: number,
): Promise<(MessageInfo & { next: number }) | undefined> {
  const prefix = await src.read(pos, Math.min(8, end - pos));
  if (prefix.length < 4) throw new Corrupt("a message is cut short");
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength);
  let length = view.getInt32(0, true);
  let at = pos + 4;
  if (length === -1) {
    // Continuation marker, then the length (the format since Arrow 0.15).
    if (prefix.length < 8) throw new Corrupt("a message is cut short");
    length = view.getInt32(4, true);
    at = pos + 8;
  }
  if (length === 0) return undefined;
  if (!(length > 0 && at + length <= end)) throw new Corrupt(`message metadata of ${length} bytes runs past the end (truncated?)`);
  const info = checkMessage(await src.read(at, length), expected);
  if (at + length + info.bodyLength > end && expected === undefined)
    throw new Corrupt(`a message body of ${info.bodyLength} bytes runs past the end (truncated?)`);
  return { ...info, next: at + length + info.bodyLength };
}
