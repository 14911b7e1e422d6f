// The inputs of a curate config as pieces in input order: one per file (a folder's data shards each
// apart), or a whole folder of text files. Rows are numbered in this order by every run, so a shard
// (`--shard i/N`) can take the pieces — or, for plain JSONL, the byte ranges — that fall in its
// 1/N of the bytes, and the merge still numbers every row as one process would.
import { open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "@owntune/core";
import type { CurateConfig } from "./config.js";
import { formatFromName, type FileFormat } from "./readers/index.js";

export interface InputPiece {
  /** Index of the input in the config. */
  input: number;
  /** The file (or text folder) on disk, and as errors name it. */
  path: string;
  display: string;
  /** "jsonl": raw lines parsed by the workers; "rows": rows from the reader of `format`. */
  kind: "jsonl" | "rows";
  format: FileFormat | "auto";
  gzip: boolean;
  /** Bytes on disk. */
  size: number;
  /** Rows beginning in this byte range [start, end) are this piece's (plain JSONL; else the whole file). */
  start: number;
  end: number;
}

/** Which shard of how many: `--shard i/N`. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** Parses "i/N" (0 ≤ i < N). */
export function parseShardSpec(text: string, field = "--shard"): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || !(count >= 1) || !(index < count)) throw new UserError(`expected i/N with 0 ≤ i < N (e.g. 0/4), got "${text}"`, { field });
  return { index, count };
}

async function gzipMagic(path: string): Promise<boolean> {
  const fh = await open(path, "r");
  try {
    const b = Buffer.alloc(2);
    const { bytesRead } = await fh.read(b, 0, 2, 0);
    return bytesRead === 2 && b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

async function folderBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) bytes += await folderBytes(p);
    else if (e.isFile()) bytes += (await stat(p)).size;
  }
  return bytes;
}

async function filePiece(input: number, path: string, display: string, format: FileFormat, size: number): Promise<InputPiece> {
  const gzip = format === "jsonl" && (path.endsWith(".gz") || (size >= 2 && (await gzipMagic(path))));
  return { input, path, display, kind: format === "jsonl" ? "jsonl" : "rows", format, gzip, size, start: 0, end: size };
}

/** Lists the pieces of every input, in the order readInput reads them. */
export async function planPieces(cfg: CurateConfig, resolvePath: (p: string) => string): Promise<InputPiece[]> {
  const pieces: InputPiece[] = [];
  for (let k = 0; k < cfg.inputs.length; k++) {
    const input = cfg.inputs[k]!;
    const path = resolvePath(input.path);
    let info;
    try {
      info = await stat(path);
    } catch {
      throw new UserError("no such file or folder", { file: input.path, hint: "check the input path" });
    }
    if (info.isDirectory()) {
      const names = (await readdir(path)).filter((n) => !n.startsWith(".")).sort();
      let found = false;
      for (const f of ["arrow", "parquet", "jsonl"] as const) {
        const shards = names.filter((n) => formatFromName(n) === f && (input.format === "auto" || input.format === f));
        if (shards.length === 0) continue;
        for (const s of shards) pieces.push(await filePiece(k, join(path, s), join(input.path, s), f, (await stat(join(path, s))).size));
        found = true;
        break;
      }
      if (found) continue;
      if (input.format !== "auto" && input.format !== "text")
        throw new UserError(`folder has no .${input.format} files`, { file: input.path });
      const size = await folderBytes(path);
      pieces.push({ input: k, path, display: input.path, kind: "rows", format: input.format, gzip: false, size, start: 0, end: size });
      continue;
    }
    const f = input.format === "auto" ? formatFromName(path) : input.format;
    if (f === undefined) {
      throw new UserError("cannot tell the file format from its name", {
        file: input.path,
        hint: 'set "format" to jsonl, parquet, arrow, csv or text',
      });
    }
    pieces.push(await filePiece(k, path, input.path, f, info.size));
  }
  return pieces;
}

/**
 * The part of the pieces shard `index` of `count` reads: the rows whose first byte lies in its 1/N of
 * all input bytes (in piece order). Plain JSONL files split at any byte; other files go whole to the
 * shard their first byte falls in.
 */
export function shardPieces(pieces: readonly InputPiece[], shard: ShardSpec): InputPiece[] {
  const total = pieces.reduce((a, p) => a + p.size, 0);
  const lo = Math.floor((shard.index * total) / shard.count);
  const hi = Math.floor(((shard.index + 1) * total) / shard.count);
  const last = shard.index === shard.count - 1;
  const out: InputPiece[] = [];
  let offset = 0;
  for (const p of pieces) {
    if (p.kind === "jsonl" && !p.gzip) {
      const start = Math.max(lo - offset, 0);
      const end = Math.min(hi - offset, p.size);
      if (start < end) out.push({ ...p, start, end });
    } else if ((offset >= lo && offset < hi) || (last && offset >= hi)) {
      out.push(p);
    }
    offset += p.size;
  }
  return out;
}
