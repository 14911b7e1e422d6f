// safetensors files, read and written one tensor at a time: 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, __metadata__?}, then the raw tensor bytes.
// Reference: the format spec and checks of huggingface/safetensors (safetensors/src/tensor.rs).
import { constants as fsConstants, promises as fsp } from "node:fs";
import { endianness } from "node:os";
import { withAtomicFile } from "./atomic-write.js";
import { UserError } from "./errors.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./float-convert.js";
import { silentProgress, type Progress } from "./progress.js";

/** Header size limit: the reference implementation refuses headers over 100 MB (MAX_HEADER_SIZE), so a
 * larger length means a corrupt or foreign file, and we never allocate gigabytes on its word. */
export const MAX_HEADER_BYTES = 100_000_000;
/** Highest tensor rank accepted; checkpoints use ≤ 4 (MoE experts), so more means a corrupt header. */
export const MAX_RANK = 8;
/** Bytes read per chunk when decoding, so a bf16 tensor is widened without a second full-size copy. */
const DECODE_CHUNK_BYTES = 8 << 20;

/** Bytes per element of every dtype the format defines. */
export const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
} as const;

export type SafetensorsDtype = keyof typeof DTYPE_BYTES;
/** The dtypes this toolkit decodes to float32 and writes. */
export type FloatDtype = "F32" | "F16" | "BF16";
export const FLOAT_DTYPES: readonly FloatDtype[] = ["F32", "F16", "BF16"];

if (endianness() !== "LE") throw new Error("owntune reads safetensors (little-endian) only on little-endian machines");

/** One tensor's header entry; `begin`/`end` are absolute byte offsets in the file. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Number of elements of a shape (1 for a scalar `[]`). */
export function numElements(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function formatShape(shape: readonly unknown[]): string {
  return `[${shape.join(", ")}]`;
}

function isFloatDtype(d: string): d is FloatDtype {
  return (FLOAT_DTYPES as readonly string[]).includes(d);
}

/** Parses and checks a header; `dataBytes` is the size of the data section after it. */
export function parseSafetensorsHeader(
  json: unknown,
  dataBytes: number,
  dataStart: number,
  file: string,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> } {
  const bad = (message: string, hint?: string) => new UserError(message, { file, hint });
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw bad("header is not a JSON object");
  const entries: SafetensorsEntry[] = [];
  const metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw bad("__metadata__ must map strings to strings");
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") throw bad(`__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw bad(`tensor ${name}: entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      throw bad(`tensor ${name}: unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(", ")})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`tensor ${name}: shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (shape.length > MAX_RANK) throw bad(`tensor ${name}: shape ${formatShape(shape)} has rank ${shape.length}, more than ${MAX_RANK}`);
    const elements = numElements(shape as number[]);
    const bytes = elements * DTYPE_BYTES[dtype as SafetensorsDtype];
    if (!Number.isSafeInteger(bytes)) throw bad(`tensor ${name}: shape ${formatShape(shape)} is too large`);
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw bad(`tensor ${name}: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes) {
      throw bad(
        `tensor ${name}: data_offsets [${begin}, ${end}] run past the end of the data section (${dataBytes} bytes)`,
        "the file is truncated or its header is wrong",
      );
    }
    if (end - begin !== bytes) {
      throw bad(
        `tensor ${name}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but shape ${formatShape(shape)} of ${dtype} needs ${bytes}`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  // Sorted by start, a tensor overlaps an earlier one iff it starts before the furthest end so far.
  const byOffset = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  let reach: SafetensorsEntry | undefined;
  for (const cur of byOffset) {
    if (reach && cur.begin < reach.end) {
      throw bad(
        `tensors ${reach.name} and ${cur.name} overlap: data_offsets [${reach.begin - dataStart}, ${reach.end - dataStart}] and [${cur.begin - dataStart}, ${cur.end - dataStart}]`,
      );
    }
    if (!reach || cur.end > reach.end) reach = cur;
  }
  return { entries, metadata };
}

async function readExactly(fh: fsp.FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    // One read returns at most ~2 GiB; loop until the range is filled.
    const n = Math.min(target.byteLength - done, 1 << 30);
    const { bytesRead } = await fh.read(target, done, n, position + done);
    if (bytesRead === 0) throw new UserError(`unexpected end of file at byte ${position + done}`, { file, hint: "the file is truncated" });
    done += bytesRead;
  }
}

/** An open safetensors file: the checked header in memory, tensors read on demand by positioned reads. */
export class SafetensorsFile {
  readonly path: string;
  /** Tensors in header order. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  /** Total file size in bytes. */
  readonly size: number;
  private fh: fsp.FileHandle | undefined;

  private constructor(path: string, entries: SafetensorsEntry[], metadata: Record<string, string>, size: number, fh: fsp.FileHandle) {
    this.path = path;
    this.entries = new Map(entries.map((e) => [e.name, e]));
    this.metadata = metadata;
    this.size = size;
    this.fh = fh;
  }

  /** Opens `path` and validates its header; every problem is a UserError naming the file (and tensor). */
  static async open(path: string): Promise<SafetensorsFile> {
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(path, fsConstants.O_RDONLY);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UserError(code === "ENOENT" ? "no such file" : `cannot open (${code})`, { file: path });
    }
    try {
      const size = (await fh.stat()).size;
      if (size < 8)
        throw new UserError(`file is ${size} bytes, too short for a safetensors header (8-byte length, then JSON)`, { file: path });
      const lenBytes = new Uint8Array(8);
      await readExactly(fh, lenBytes, 0, path);
      const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new UserError(`header length ${headerLen} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit of the safetensors format`, {
          file: path,
          hint: "the file is corrupt or not safetensors",
        });
      }
      const n = Number(headerLen);
      if (8 + n > size) {
        throw new UserError(`header length ${n} bytes runs past the end of the file (${size} bytes)`, {
          file: path,
          hint: "the file is truncated",
        });
      }
      const headerBytes = new Uint8Array(n);
      await readExactly(fh, headerBytes, 8, path);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
      } catch {
        throw new UserError("header is not valid UTF-8 JSON", { file: path, hint: "the file is corrupt or not safetensors" });
      }
      const { entries, metadata } = parseSafetensorsHeader(json, size - 8 - n, 8 + n, path);
      return new SafetensorsFile(path, entries, metadata, size, fh);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) throw new UserError(`no tensor named ${name}`, { file: this.path });
    return e;
  }

  private handle(): fsp.FileHandle {
    if (!this.fh) throw new Error(`${this.path} is closed`);
    return this.fh;
  }

  /** The tensor's stored bytes, as they are on disk (little-endian, any dtype). */
  async readRaw(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const out = new Uint8Array(e.end - e.begin);
    await readExactly(this.handle(), out, e.begin, this.path);
    return out;
  }

  /** The tensor decoded to float32 (F32 as is, F16/BF16 widened exactly), row-major. */
  async read(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    return this.decodeRange(e, 0, numElements(e.shape));
  }

  /**
   * Rows `start … start+count−1` along the first axis, decoded to float32: `[count, ...shape[1:]]`.
   * Lets callers gather from tables too large to widen whole (a 262144-row embedding).
   */
  async readRows(name: string, start: number, count: number): Promise<Float32Array> {
    const e = this.entry(name);
    const rows = e.shape[0] ?? 1;
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > rows) {
      throw new RangeError(`${this.path}: rows [${start}, ${start + count}) out of range for ${name} ${formatShape(e.shape)}`);
    }
    const rowElements = numElements(e.shape.slice(1));
    return this.decodeRange(e, start * rowElements, count * rowElements);
  }

  private async decodeRange(e: SafetensorsEntry, first: number, count: number): Promise<Float32Array> {
    if (!isFloatDtype(e.dtype)) {
      throw new UserError(`tensor ${e.name} has dtype ${e.dtype}; owntune decodes ${FLOAT_DTYPES.join(", ")} to float32`, {
        file: this.path,
      });
    }
    const size = DTYPE_BYTES[e.dtype];
    const out = new Float32Array(count);
    const start = e.begin + first * size;
    if (e.dtype === "F32") {
      // Straight into the output, through views of at most 1 GiB (a byte view of a > 4 GiB array would be too long).
      for (let b = 0; b < out.byteLength; b += 1 << 30) {
        await readExactly(this.handle(), new Uint8Array(out.buffer, b, Math.min(1 << 30, out.byteLength - b)), start + b, this.path);
      }
      return out;
    }
    // 16-bit: read bounded chunks and widen each into its place in `out`.
    const chunkElements = Math.max(1, Math.floor(DECODE_CHUNK_BYTES / size));
    const scratch = new Uint16Array(Math.min(count, chunkElements));
    for (let done = 0; done < count; done += chunkElements) {
      const n = Math.min(chunkElements, count - done);
      const part = scratch.subarray(0, n);
      await readExactly(this.handle(), new Uint8Array(part.buffer, 0, n * 2), start + done * 2, this.path);
      const dst = out.subarray(done, done + n);
      if (e.dtype === "BF16") bf16ToF32(part, dst);
      else f16ToF32(part, dst);
    }
    return out;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}

/** Opens a safetensors file, runs `fn`, and closes it. */
export async function withSafetensors<T>(path: string, fn: (file: SafetensorsFile) => Promise<T>): Promise<T> {
  const file = await SafetensorsFile.open(path);
  try {
    return await fn(file);
  } finally {
    await file.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** One tensor to write: its name, stored dtype and shape. */
export interface TensorToWrite {
  name: string;
  dtype: FloatDtype;
  shape: number[];
}

/** What a producer may return for one tensor. */
export type TensorData = Float32Array | Uint8Array | Iterable<Float32Array> | AsyncIterable<Float32Array>;

/**
 * Produces one tensor's data when the writer reaches it: float32 values (converted to the stored
 * dtype, round to nearest even), consecutive float32 chunks, synchronous or asynchronous (for tensors
 * too large to hold at once: each chunk is written before the next is asked for), or a Uint8Array
 * already holding the stored bytes (copied as is).
 */
export type TensorProducer = (tensor: TensorToWrite, index: number) => TensorData | Promise<TensorData>;

/** The header bytes (length prefix + JSON, padded with spaces to a multiple of 8) for `tensors` in order. */
export function encodeSafetensorsHeader(tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new Error(`tensor ${t.name} is listed twice`);
    seen.add(t.name);
    if (!isFloatDtype(t.dtype)) throw new Error(`tensor ${t.name}: cannot write dtype ${String(t.dtype)}`);
    const bytes = numElements(t.shape) * DTYPE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // The data section starts 8-byte aligned (as the reference writer does), so typed views can map it.
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const body = Buffer.from(json, "utf8");
  const out = new Uint8Array(8 + body.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(body.byteLength), true);
  out.set(body, 8);
  return out;
}

/** Bytes of the data section (what the header's offsets span). */
export function safetensorsDataBytes(tensors: readonly TensorToWrite[]): number {
  return tensors.reduce((sum, t) => sum + numElements(t.shape) * DTYPE_BYTES[t.dtype], 0);
}

/**
 * Writes a safetensors file atomically, tensor by tensor: the header first (from names, dtypes and
 * shapes), then each tensor's bytes from `produce`, called in order so only one tensor is in memory.
 * `progress` counts bytes.
 */
export async function writeSafetensors(
  path: string,
  tensors: readonly TensorToWrite[],
  produce: TensorProducer,
  options: { metadata?: Record<string, string>; progress?: Progress } = {},
): Promise<void> {
  const progress = options.progress ?? silentProgress;
  const header = encodeSafetensorsHeader(tensors, options.metadata);
  await withAtomicFile(path, async (file) => {
    await file.write(header);
    progress.start(safetensorsDataBytes(tensors), `write ${path}`, "B");
    for (let i = 0; i < tensors.length; i++) {
      const t = tensors[i]!;
      const data = await produce(t, i);
      const elements = numElements(t.shape);
      const bytes = elements * DTYPE_BYTES[t.dtype];
      if (data instanceof Uint8Array) {
        if (data.byteLength !== bytes)
          throw new Error(`tensor ${t.name}: got ${data.byteLength} bytes, ${t.dtype} ${formatShape(t.shape)} needs ${bytes}`);
        await file.write(data);
      } else {
        let count = 0;
        for await (const chunk of data instanceof Float32Array ? [data] : data) {
          count += chunk.length;
          if (count > elements) break;
          await writeConverted(file.write.bind(file), chunk, t.dtype);
        }
        if (count !== elements)
          throw new Error(
            `tensor ${t.name}: produced ${count > elements ? "too many" : count} values, shape ${formatShape(t.shape)} needs ${elements}`,
          );
      }
      progress.increment(bytes);
    }
    progress.stop();
  });
}

/** Converts float32 values to `dtype` in bounded chunks and appends them. */
async function writeConverted(write: (chunk: Uint8Array) => Promise<void>, data: Float32Array, dtype: FloatDtype): Promise<void> {
  if (dtype === "F32") {
    for (let b = 0; b < data.byteLength; b += 1 << 30) {
      await write(new Uint8Array(data.buffer, data.byteOffset + b, Math.min(1 << 30, data.byteLength - b)));
    }
    return;
  }
  const chunk = DECODE_CHUNK_BYTES / 2;
  const scratch = new Uint16Array(Math.min(chunk, data.length));
  for (let i = 0; i < data.length; i += chunk) {
    const src = data.subarray(i, Math.min(i + chunk, data.length));
    const dst = scratch.subarray(0, src.length);
    if (dtype === "BF16") f32ToBf16(src, dst);
    else f32ToF16(src, dst);
    await write(new Uint8Array(dst.buffer, 0, dst.byteLength)); // written before it resolves: scratch is free again
  }
}
