// What every reader yields: one raw row (a parsed JSON object, a Parquet/Arrow/CSV record, or a text
// file) plus where it came from, so a bad row can be reported as `file:line`.

/** One row as read, before schema mapping. */
export interface SourceRow {
  /** The input file as the user named it (or a file inside a named folder). */
  file: string;
  /** 1-based line (JSONL, CSV) or row number (Parquet, Arrow); 1 for a text file. */
  line: number;
  /** The row's fields; `undefined` where the row itself could not be parsed (see `error`). */
  value: Record<string, unknown> | undefined;
  /** Set when the row is malformed (bad JSON, invalid UTF-8): what is wrong with it. */
  error?: string;
  /** Bytes of input this row accounts for (for MB/s and progress). */
  bytes: number;
}

/** The first byte offset at which `bytes` is not valid UTF-8, or -1 when all of it is. */
export function findInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.length;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) ((need = 1), (min = 0x80));
    else if (b >= 0xe0 && b <= 0xef) ((need = 2), (min = 0x800));
    else if (b >= 0xf0 && b <= 0xf4) ((need = 3), (min = 0x10000));
    else return i;
    if (i + need >= n) return i; // truncated sequence at the end
    let cp = b & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are invalid too.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return -1;
}

/** Converts values from Arrow/Parquet readers into plain JSON-like values (bigint → number). */
export function toPlain(v: unknown): unknown {
  if (v === null || v === undefined) return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(toPlain);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>, (x) => toPlain(x));
  const obj = v as { toArray?: () => unknown; toJSON?: () => unknown };
  // apache-arrow StructRows (toJSON → object) and Vectors (toJSON → array).
  if (typeof obj.toJSON === "function" && !(v instanceof Date)) return toPlain(obj.toJSON());
  if (typeof obj.toArray === "function" && !(v instanceof Map)) {
    const arr = obj.toArray();
    return Array.isArray(arr) ? arr.map(toPlain) : Array.from(arr as ArrayLike<unknown>, toPlain);
  }
  if (v instanceof Date) return v.toISOString();
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toPlain(x);
  return out;
}
