// Streaming GGUF v3 writer: the header (metadata, then every tensor info with its offset, known
// from shapes and types alone) first, then each tensor read from its source a few rows at a time,
// converted or quantized, and written in info order. Reference: spec/gguf.md §1.
//
// Quantized types are quantized on worker threads (quant/quantize-pool.ts) while the next chunk is
// read, so reading, quantizing and writing overlap; the bytes are those of one thread.
//
// Memory bound: the header bytes (a few MB: the tokenizer arrays dominate), plus two chunks of at
// most CHUNK_VALUES float32 values (16 MiB), their copies on the threads and their converted bytes,
// whatever the model size —
// provided each tensor input reads row ranges (a TensorSource with `readRows`); an input that can
// only read whole tensors adds one tensor's float32 copy (a tensor at a time, never the model).
import { defaultThreadCount, withAtomicFile, type AtomicFile, type Progress } from "@owntune/core";
import {
  alignTo,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  GgufValueType,
  type GgufEntry,
  type GgufScalar,
} from "./gguf-format.js";
import { ggmlNBytes, ggmlTypeInfo, ggmlTypeName } from "./quant/ggml-types.js";
import { quantizeRows } from "./quant/quantizer.js";
import { isFloatType, QuantizePool } from "./quant/quantize-pool.js";
import { GGUF_MAX_TENSOR_NAME } from "./tensor-names.js";

/** Values converted per write: 4 Mi float32 (16 MiB), big enough for disk throughput. */
export const CHUNK_VALUES = 4 * 1024 * 1024;

/** One tensor to write: its GGUF name, ggml dims (ne, fastest first), target type and a row reader. */
export interface GgufTensorInput {
  name: string;
  ne: number[];
  type: number;
  /**
   * Float32 values of rows [start, start+count) (a row is ne[0] values; rows run over ne[1..]).
   * The writer converts them to `type`.
   */
  readRows(start: number, count: number): Promise<Float32Array>;
}

/** Little-endian byte builder for the header. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) {
    this.reserve(1);
    this.view.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number) {
    this.reserve(1);
    this.view.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number) {
    this.reserve(2);
    this.view.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number) {
    this.reserve(2);
    this.view.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number) {
    this.reserve(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number) {
    this.reserve(4);
    this.view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number) {
    this.reserve(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number) {
    this.reserve(8);
    this.view.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint) {
    this.reserve(8);
    this.view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint) {
    this.reserve(8);
    this.view.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(b: Uint8Array) {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string) {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  zeros(n: number) {
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  done(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(out: Bytes, type: number, v: GgufScalar, key: string): void {
  const num = () => {
    if (typeof v !== "number" && typeof v !== "bigint") throw new TypeError(`GGUF key ${key}: expected a number, got ${typeof v}`);
    return Number(v);
  };
  switch (type) {
    case GgufValueType.UINT8:
      return out.u8(num());
    case GgufValueType.INT8:
      return out.i8(num());
    case GgufValueType.UINT16:
      return out.u16(num());
    case GgufValueType.INT16:
      return out.i16(num());
    case GgufValueType.UINT32:
      return out.u32(num());
    case GgufValueType.INT32:
      return out.i32(num());
    case GgufValueType.FLOAT32:
      return out.f32(num());
    case GgufValueType.FLOAT64:
      return out.f64(num());
    case GgufValueType.UINT64:
      return out.u64(typeof v === "bigint" ? v : num());
    case GgufValueType.INT64:
      return out.i64(typeof v === "bigint" ? v : num());
    case GgufValueType.BOOL:
      return out.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof v !== "string") throw new TypeError(`GGUF key ${key}: expected a string`);
      return out.string(v);
    default:
      throw new TypeError(`GGUF key ${key}: value type ${type} cannot be written`);
  }
}

/** Serializes the metadata KV pairs (in insertion order). */
export function encodeMetadata(metadata: ReadonlyMap<string, GgufEntry>, out = new Bytes()): Uint8Array {
  for (const [key, entry] of metadata) {
    if (key === "") throw new TypeError("GGUF keys must be non-empty");
    out.string(key);
    out.u32(entry.type);
    if (entry.type === GgufValueType.ARRAY) {
      out.u32(entry.itemType);
      const items = entry.value as ArrayLike<GgufScalar>;
      out.u64(items.length);
      for (let i = 0; i < items.length; i++) writeScalar(out, entry.itemType, items[i]!, key);
    } else {
      writeScalar(out, entry.type, entry.value, key);
    }
  }
  return out.done();
}

/** Byte size of a tensor's data (before padding). */
export function tensorNBytes(type: number, ne: readonly number[]): number {
  const rows = ne.slice(1).reduce((a, b) => a * b, 1);
  return ggmlNBytes(type, ne[0]!) * rows;
}

export interface WriteGgufOptions {
  metadata: ReadonlyMap<string, GgufEntry>;
  tensors: readonly GgufTensorInput[];
  progress?: Progress;
  /** Progress label. */
  label?: string;
  /** Threads quantizing (default: one per core; 1 = all in the calling thread). */
  threads?: number;
}

export interface WriteGgufResult {
  bytes: number;
  tensorCount: number;
  /** Float32 bytes read from the sources (what throughput is measured in). */
  sourceBytes: number;
}

/** Checks names, shapes and types up front, so nothing is written for an impossible file. */
function checkTensors(tensors: readonly GgufTensorInput[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (Buffer.byteLength(t.name) > GGUF_MAX_TENSOR_NAME)
      throw new RangeError(`tensor name ${t.name} is longer than ${GGUF_MAX_TENSOR_NAME} bytes`);
    if (seen.has(t.name)) throw new RangeError(`tensor ${t.name} appears twice`);
    seen.add(t.name);
    if (t.ne.length < 1 || t.ne.length > 4 || t.ne.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw new RangeError(`tensor ${t.name}: dims [${t.ne.join(", ")}] must be 1 to 4 positive integers`);
    }
    const info = ggmlTypeInfo(t.type);
    if (!info) throw new RangeError(`tensor ${t.name}: unknown ggml type ${t.type}`);
    if (t.ne[0]! % info.block !== 0) {
      throw new RangeError(`tensor ${t.name}: ne[0] = ${t.ne[0]} is not a multiple of ${ggmlTypeName(t.type)}'s block of ${info.block}`);
    }
  }
}

/** Writes the header: magic, version, counts, metadata, tensor infos with sequential offsets, padding. */
function encodeHeader(metadata: ReadonlyMap<string, GgufEntry>, tensors: readonly GgufTensorInput[], alignment: number): Uint8Array {
  const out = new Bytes();
  out.u32(GGUF_MAGIC);
  out.u32(GGUF_VERSION);
  out.u64(tensors.length);
  out.u64(metadata.size);
  encodeMetadata(metadata, out);
  let offset = 0;
  for (const t of tensors) {
    out.string(t.name);
    // ggml writes n_dims with trailing 1-dims dropped (at least one).
    let n = t.ne.length;
    while (n > 1 && t.ne[n - 1] === 1) n--;
    out.u32(n);
    for (let i = 0; i < n; i++) out.u64(t.ne[i]!);
    out.u32(t.type);
    out.u64(offset);
    offset += alignTo(tensorNBytes(t.type, t.ne), alignment);
  }
  out.zeros(alignTo(out.length, alignment) - out.length);
  return out.done();
}

async function writeTensorData(
  file: AtomicFile,
  t: GgufTensorInput,
  alignment: number,
  progress: Progress,
  pool: QuantizePool | undefined,
): Promise<number> {
  const rowLength = t.ne[0]!;
  const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_VALUES / rowLength));
  let sourceBytes = 0;
  // One chunk in flight on the pool while the next one is read.
  let inFlight: Promise<Uint8Array[]> | undefined;
  const flush = async () => {
    if (inFlight) for (const bytes of await inFlight) await file.write(bytes);
    inFlight = undefined;
  };
  for (let start = 0; start < rows; start += rowsPerChunk) {
    const count = Math.min(rowsPerChunk, rows - start);
    const values = await t.readRows(start, count);
    if (values.length !== count * rowLength) {
      throw new RangeError(`tensor ${t.name}: rows ${start}..${start + count} gave ${values.length} values, expected ${count * rowLength}`);
    }
    const converted = pool ? pool.quantize(t.type, values, rowLength) : Promise.resolve([quantizeRows(t.type, values, rowLength)]);
    converted.catch(() => {}); // awaited in flush; this only keeps a failure while reading from being unhandled
    await flush();
    inFlight = converted;
    sourceBytes += values.byteLength;
    progress.increment(values.byteLength);
  }
  await flush();
  const nbytes = tensorNBytes(t.type, t.ne);
  const pad = alignTo(nbytes, alignment) - nbytes;
  if (pad > 0) await file.write(new Uint8Array(pad));
  return sourceBytes;
}

/**
 * Writes a GGUF file atomically (temp name, fsync, rename). Tensors are written in the order
 * given; their offsets follow each other exactly, as ggml requires.
 */
export async function writeGguf(path: string, options: WriteGgufOptions): Promise<WriteGgufResult> {
  const { metadata, tensors } = options;
  const progress = options.progress;
  checkTensors(tensors);
  const alignEntry = metadata.get("general.alignment");
  const alignment = alignEntry && alignEntry.type === GgufValueType.UINT32 ? Number(alignEntry.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError(`general.alignment must be a power of two, got ${alignment}`);
  }
  const header = encodeHeader(metadata, tensors, alignment);
  const totalSource = tensors.reduce((a, t) => a + 4 * t.ne.reduce((x, y) => x * y, 1), 0);
  const p = progress ?? { start() {}, update() {}, increment() {}, stop() {} };
  const threads = options.threads ?? defaultThreadCount();
  const pool = threads > 1 && tensors.some((t) => !isFloatType(t.type)) ? new QuantizePool(threads) : undefined;
  p.start(totalSource, options.label ?? "gguf", "B");
  try {
    return await withAtomicFile(path, async (file) => {
      await file.write(header);
      let sourceBytes = 0;
      for (const t of tensors) sourceBytes += await writeTensorData(file, t, alignment, p, pool);
      return { bytes: file.bytesWritten, tensorCount: tensors.length, sourceBytes };
    });
  } finally {
    p.stop();
    await pool?.close();
  }
}
