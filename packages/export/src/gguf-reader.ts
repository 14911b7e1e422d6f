// GGUF v3 reader for `owntune inspect`, verify and tests: header (metadata, tensor infos) and
// tensor data, with every count and length checked against named caps and the file's size before
// anything is allocated, so a corrupt or hostile file is a UserError, never a crash or a huge
// allocation. Reference: spec/gguf.md §1 (the checks mirror ggml/src/gguf.cpp's gguf_init_from_file).
import { open, stat, type FileHandle } from "node:fs/promises";
import { UserError } from "@owntune/core";
import {
  alignTo,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VALUE_TYPE_NAMES,
  GgufValueType,
  scalarSize,
  type GgufEntry,
  type GgufScalar,
  type GgufScalarType,
} from "./gguf-format.js";
import { GGML_TYPE_COUNT, ggmlTypeInfo, ggmlTypeName } from "./quant/ggml-types.js";
import { canDequantize, dequantizeTensor } from "./quant/quantize.js";

/** Tensor and KV counts: ten times the largest real model's tensor count (~6,000 for unstacked MoE). */
export const GGUF_MAX_TENSORS = 65_536;
export const GGUF_MAX_KV = 65_536;
/** ggml's own limits: strings up to 1 GiB, arrays up to 2^30 elements. */
export const GGUF_MAX_STRING_BYTES = 1 << 30;
export const GGUF_MAX_ARRAY_LENGTH = 1 << 30;
/** Keys are short dotted names; GGUF's convention caps them at 65,535 bytes. */
export const GGUF_MAX_KEY_BYTES = 65_535;
/** GGML_MAX_DIMS. */
export const GGUF_MAX_DIMS = 4;
/** Header bytes read from disk at a time. */
const READ_WINDOW = 1 << 20;

export interface GgufTensorInfo {
  name: string;
  /** ggml dims, fastest first (padded to at least one). */
  ne: number[];
  type: number;
  /** Offset inside the data section. */
  offset: number;
  /** Data bytes (without padding). */
  nbytes: number;
}

export interface GgufHeader {
  file: string;
  version: number;
  metadata: Map<string, GgufEntry>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  fileSize: number;
}

/** Sequential reads over a file handle through a window, with truncation reported by what was read. */
class HeaderCursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    private readonly file: string,
  ) {}

  fail(message: string): never {
    throw new UserError(message, { file: this.file });
  }

  private async need(n: number, what: string): Promise<Buffer> {
    if (this.pos + n > this.size) {
      this.fail(`truncated: ${what} needs ${n} byte(s) at offset ${this.pos}, but the file ends at ${this.size}`);
    }
    const end = this.pos + n;
    if (this.pos < this.bufStart || end > this.bufStart + this.buf.length) {
      const length = Math.max(n, Math.min(READ_WINDOW, this.size - this.pos));
      const next = Buffer.alloc(length);
      const { bytesRead } = await this.fh.read(next, 0, length, this.pos);
      if (bytesRead < n) this.fail(`truncated: ${what} needs ${n} byte(s) at offset ${this.pos}, but only ${bytesRead} could be read`);
      this.buf = next;
      this.bufStart = this.pos;
    }
    const at = this.pos - this.bufStart;
    this.pos = end;
    return this.buf.subarray(at, at + n);
  }

  get remaining(): number {
    return this.size - this.pos;
  }
  async u32(what: string) {
    return (await this.need(4, what)).readUInt32LE(0);
  }
  async u64(what: string): Promise<bigint> {
    return (await this.need(8, what)).readBigUInt64LE(0);
  }

  /** A u64 count, checked against `cap` and against what the rest of the file can hold. */
  async count(what: string, cap: number, minBytesEach: number): Promise<number> {
    const n = await this.u64(what);
    if (n > BigInt(cap)) this.fail(`${what} is ${n}, past the cap of ${cap}`);
    const count = Number(n);
    if (count * minBytesEach > this.remaining) {
      this.fail(
        `truncated: ${what} is ${count}, which needs at least ${count * minBytesEach} more bytes, but only ${this.remaining} remain`,
      );
    }
    return count;
  }

  async string(what: string, cap = GGUF_MAX_STRING_BYTES): Promise<string> {
    const len = await this.count(`${what}: string length`, cap, 1);
    const bytes = await this.need(len, what);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      this.fail(`${what} is not valid UTF-8`);
    }
  }

  async scalar(type: number, what: string): Promise<GgufScalar> {
    if (type === GgufValueType.STRING) return this.string(what);
    const size = scalarSize(type);
    if (size === undefined) this.fail(`${what}: unknown value type ${type}`);
    const b = await this.need(size, what);
    switch (type) {
      case GgufValueType.UINT8:
        return b.readUInt8(0);
      case GgufValueType.INT8:
        return b.readInt8(0);
      case GgufValueType.UINT16:
        return b.readUInt16LE(0);
      case GgufValueType.INT16:
        return b.readInt16LE(0);
      case GgufValueType.UINT32:
        return b.readUInt32LE(0);
      case GgufValueType.INT32:
        return b.readInt32LE(0);
      case GgufValueType.FLOAT32:
        return b.readFloatLE(0);
      case GgufValueType.BOOL:
        return b.readUInt8(0) !== 0;
      case GgufValueType.UINT64:
        return b.readBigUInt64LE(0);
      case GgufValueType.INT64:
        return b.readBigInt64LE(0);
      default:
        return b.readDoubleLE(0);
    }
  }
}

async function readEntry(c: HeaderCursor, key: string): Promise<GgufEntry> {
  const type = await c.u32(`key ${key}: value type`);
  if (type === GgufValueType.ARRAY) {
    const itemType = await c.u32(`key ${key}: array item type`);
    if (itemType === GgufValueType.ARRAY) c.fail(`key ${key}: nested arrays are not allowed (llama.cpp rejects them)`);
    if (itemType > GgufValueType.FLOAT64) c.fail(`key ${key}: unknown array item type ${itemType}`);
    const n = await c.count(`key ${key}: array length`, GGUF_MAX_ARRAY_LENGTH, scalarSize(itemType) ?? 8);
    const items: GgufScalar[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = await c.scalar(itemType, `key ${key}[${i}]`);
    return { type: 9, itemType: itemType as GgufScalarType, value: items };
  }
  if (type > GgufValueType.FLOAT64) c.fail(`key ${key}: unknown value type ${type}`);
  return { type: type as GgufScalarType, value: await c.scalar(type, `key ${key}`) };
}

/** The last header read, by path, size and mtime: verify and inspect read the same file repeatedly. */
let lastHeader: { key: string; header: GgufHeader } | undefined;

/** Reads and checks a GGUF file's header. Throws UserError naming the file for anything malformed. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  let key: string | undefined;
  try {
    const st = await stat(path);
    key = `${path}\0${st.size}\0${st.mtimeMs}`;
    if (lastHeader?.key === key) return lastHeader.header;
  } catch {
    // reported by the open below
  }
  const header = await readGgufHeaderUncached(path);
  if (key) lastHeader = { key, header };
  return header;
}

async function readGgufHeaderUncached(path: string): Promise<GgufHeader> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new UserError(`cannot open (${(e as NodeJS.ErrnoException).code})`, { file: path });
  }
  try {
    const size = (await fh.stat()).size;
    const c: HeaderCursor = new HeaderCursor(fh, size, path);
    if (size < 4) c.fail(`not a GGUF file: ${size} byte(s), too short for the magic`);
    const magic = await c.u32("magic");
    if (magic !== GGUF_MAGIC) {
      const shown = Buffer.alloc(4);
      shown.writeUInt32LE(magic);
      c.fail(
        `not a GGUF file: magic is ${JSON.stringify(shown.toString("latin1"))} (0x${magic.toString(16).padStart(8, "0")}), expected "GGUF"`,
      );
    }
    const version = await c.u32("version");
    if ((version & 0xffff) === 0) c.fail(`GGUF version ${version} looks byte-swapped: big-endian files are not supported`);
    if (version !== 3) c.fail(`GGUF version ${version} is not supported; this reader reads version 3`);
    // Minimum sizes: a tensor info is name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8); a KV is key length (8) + type (4) + 1.
    const tensorCount = await c.count("tensor count", GGUF_MAX_TENSORS, 32);
    const kvCount = await c.count("metadata count", GGUF_MAX_KV, 13);
    const metadata = new Map<string, GgufEntry>();
    for (let i = 0; i < kvCount; i++) {
      const key = await c.string(`metadata key ${i}`, GGUF_MAX_KEY_BYTES);
      if (key === "") c.fail(`metadata key ${i} is empty`);
      if (metadata.has(key)) c.fail(`duplicate metadata key ${key}`);
      metadata.set(key, await readEntry(c, key));
    }
    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const alignEntry = metadata.get("general.alignment");
    if (alignEntry) {
      const a = Number(alignEntry.value);
      if (alignEntry.type !== GgufValueType.UINT32 || a === 0 || (a & (a - 1)) !== 0) {
        c.fail(`general.alignment must be a u32 power of two, got ${GGUF_VALUE_TYPE_NAMES[alignEntry.type]} ${String(alignEntry.value)}`);
      }
      alignment = a;
    }
    const tensors: GgufTensorInfo[] = [];
    const names = new Set<string>();
    let expectedOffset = 0;
    for (let i = 0; i < tensorCount; i++) {
      const name = await c.string(`tensor ${i}: name`, 64);
      if (Buffer.byteLength(name) > 63) c.fail(`tensor ${i}: name ${name} is longer than 63 bytes`);
      if (names.has(name)) c.fail(`duplicate tensor name ${name}`);
      names.add(name);
      const nDims = await c.u32(`tensor ${name}: n_dims`);
      if (nDims < 1 || nDims > GGUF_MAX_DIMS) c.fail(`tensor ${name}: n_dims is ${nDims}, expected 1 to ${GGUF_MAX_DIMS}`);
      const ne: number[] = [];
      let elements = 1;
      for (let d = 0; d < nDims; d++) {
        const v = await c.u64(`tensor ${name}: ne[${d}]`);
        if (v > BigInt(Number.MAX_SAFE_INTEGER)) c.fail(`tensor ${name}: ne[${d}] = ${v} is too large`);
        ne.push(Number(v));
        elements *= Number(v);
      }
      if (!Number.isSafeInteger(elements)) c.fail(`tensor ${name}: ${ne.join(" × ")} elements overflow`);
      const type = await c.u32(`tensor ${name}: type`);
      if (type >= GGML_TYPE_COUNT) c.fail(`tensor ${name}: ggml type ${type} is not a valid type (ggml knows 0 to ${GGML_TYPE_COUNT - 1})`);
      const info = ggmlTypeInfo(type);
      if (!info) c.fail(`tensor ${name}: ${ggmlTypeName(type)} is not supported by this reader`);
      if (ne[0]! % info.block !== 0)
        c.fail(`tensor ${name}: ne[0] = ${ne[0]} is not a multiple of ${info.name}'s block size ${info.block}`);
      const offset = Number(await c.u64(`tensor ${name}: offset`));
      if (offset !== expectedOffset) c.fail(`tensor '${name}' has offset ${offset}, expected ${expectedOffset}`);
      const nbytes = (elements / info.block) * info.bytes;
      expectedOffset = offset + alignTo(nbytes, alignment);
      tensors.push({ name, ne, type, offset, nbytes });
    }
    const dataOffset = alignTo(c.pos, alignment);
    for (const t of tensors) {
      if (dataOffset + t.offset + t.nbytes > size) {
        c.fail(`truncated: tensor ${t.name} data ends at ${dataOffset + t.offset + t.nbytes}, past the end of the file (${size} bytes)`);
      }
    }
    return { file: path, version, metadata, tensors, alignment, dataOffset, fileSize: size };
  } finally {
    await fh.close();
  }
}

/** A metadata value as plain JS, or undefined. */
export function ggufValue(header: GgufHeader, key: string): unknown {
  const e = header.metadata.get(key);
  if (!e) return undefined;
  return e.type === 9 ? (e.value as unknown[]) : e.value;
}

/** Raw bytes of one tensor. */
export async function readGgufTensorBytes(header: GgufHeader, name: string): Promise<Uint8Array> {
  const t = header.tensors.find((x) => x.name === name);
  if (!t) throw new UserError(`no tensor ${name} in this GGUF`, { file: header.file });
  const fh = await open(header.file, "r");
  try {
    const out = new Uint8Array(t.nbytes);
    const { bytesRead } = await fh.read(out, 0, t.nbytes, header.dataOffset + t.offset);
    if (bytesRead !== t.nbytes) throw new UserError(`truncated: tensor ${name} data is cut short`, { file: header.file });
    return out;
  } finally {
    await fh.close();
  }
}

/** A UserError unless owntune can decode the tensor's type (a header may name any ggml type). */
export function assertDecodable(t: GgufTensorInfo, file: string): void {
  if (!canDequantize(t.type)) throw new UserError(`tensor ${t.name} is ${ggmlTypeName(t.type)}, which owntune cannot decode`, { file });
}

/** One tensor decoded to float32 (ggml's dequantizers, value for value). */
export async function readGgufTensor(header: GgufHeader, name: string): Promise<Float32Array> {
  const t = header.tensors.find((x) => x.name === name)!;
  if (t) assertDecodable(t, header.file);
  const bytes = await readGgufTensorBytes(header, name);
  return dequantizeTensor(
    t.type,
    bytes,
    t.ne.reduce((a, b) => a * b, 1),
  );
}
