// JSON Lines reader (optionally gzip-compressed): streams the file, splits on "\n", decodes each line
// as strict UTF-8 and parses it as one JSON object. Never holds more than one chunk plus a line.
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { findInvalidUtf8, type SourceRow } from "./source-row.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

function describeJsonError(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return `malformed JSON (${msg.replace(/^JSON\.parse: /, "")})`;
}

/** Parses one line's bytes into a row: an object, or an `error` saying what is wrong with it. */
export function parseJsonLine(bytes: Uint8Array, file: string, line: number): SourceRow | undefined {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    const at = findInvalidUtf8(bytes);
    return { file, line, value: undefined, error: `invalid UTF-8 at byte ${at} of the line`, bytes: bytes.length + 1 };
  }
  if (text.trim() === "") return undefined; // blank lines carry no row
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return { file, line, value: undefined, error: describeJsonError(e), bytes: bytes.length + 1 };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    const got = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    return { file, line, value: undefined, error: `expected a JSON object per line, got ${got}`, bytes: bytes.length + 1 };
  }
  return { file, line, value: value as Record<string, unknown>, bytes: bytes.length + 1 };
}

/** Streams the rows of a `.jsonl` / `.jsonl.gz` file (gzip is detected from its magic bytes too). */
export async function* readJsonl(path: string, displayName = path): AsyncGenerator<SourceRow> {
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  const gz = path.endsWith(".gz") || (await startsWithGzipMagic(path));
  const stream: AsyncIterable<Buffer> = gz ? raw.pipe(createGunzip()) : raw;
  let carry: Buffer | undefined;
  let line = 0;
  for await (const chunk of stream) {
    let buf = carry ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl < 0) break;
      line++;
      const end = nl > start && buf[nl - 1] === 0x0d ? nl - 1 : nl;
      const row = parseJsonLine(buf.subarray(start, end), displayName, line);
      if (row) yield row;
      start = nl + 1;
    }
    carry = start < buf.length ? Buffer.from(buf.subarray(start)) : undefined;
    buf = Buffer.alloc(0);
  }
  if (carry && carry.length > 0) {
    line++;
    const end = carry[carry.length - 1] === 0x0d ? carry.length - 1 : carry.length;
    const row = parseJsonLine(carry.subarray(0, end), displayName, line);
    if (row) yield row;
  }
}

async function startsWithGzipMagic(path: string): Promise<boolean> {
  const { open } = await import("node:fs/promises");
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
