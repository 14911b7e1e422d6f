// Opens one configured input as a stream of rows: picks the reader from the format (or the file
// extension), and handles folders (a `datasets` save_to_disk folder of .arrow shards, a folder of
// .parquet/.jsonl shards, or a folder of .txt/.md files).
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "@owntune/core";
import { readArrow } from "./arrow.js";
import { readCsv } from "./csv.js";
import { readJsonl } from "./jsonl.js";
import { readParquet } from "./parquet.js";
import { readTextDir, readTextFile } from "./text-dir.js";
import type { SourceRow } from "./source-row.js";

export type FileFormat = "jsonl" | "parquet" | "arrow" | "csv" | "text";

/** The format a file name implies, or undefined. */
export function formatFromName(name: string): FileFormat | undefined {
  const n = name.toLowerCase();
  if (/\.(jsonl|ndjson|json)(\.gz)?$/.test(n)) return "jsonl";
  if (n.endsWith(".parquet")) return "parquet";
  if (/\.(arrow|ipc|feather|arrows)$/.test(n)) return "arrow";
  if (n.endsWith(".csv")) return "csv";
  if (/\.(txt|md|markdown)$/.test(n)) return "text";
  return undefined;
}

function readerFor(format: FileFormat): (path: string, name: string) => AsyncGenerator<SourceRow> {
  switch (format) {
    case "jsonl":
      return readJsonl;
    case "parquet":
      return readParquet;
    case "arrow":
      return readArrow;
    case "csv":
      return readCsv;
    case "text":
      return readTextDir;
  }
}

/**
 * Streams the rows of `path` (a file or folder). `displayName` is how errors name it (the path as
 * the user wrote it). `format` "auto" picks from extensions. An input without a single row (an empty
 * file, a folder without data files) is a UserError: a dataset cannot be made from nothing.
 */
export async function* readInput(path: string, format: FileFormat | "auto", displayName = path): AsyncGenerator<SourceRow> {
  let rows = 0;
  for await (const row of readRows(path, format, displayName)) {
    rows++;
    yield row;
  }
  if (rows === 0) {
    const folder = (await stat(path)).isDirectory();
    throw new UserError(
      folder
        ? `this folder holds no rows (no ${DATA_EXTENSIONS} files with data in it)`
        : "this file holds no rows (it is empty, or only blank lines)",
      {
        file: displayName,
        hint: "check the input path",
      },
    );
  }
}

const DATA_EXTENSIONS = ".arrow, .parquet, .jsonl, .txt or .md";

async function* readRows(path: string, format: FileFormat | "auto", displayName: string): AsyncGenerator<SourceRow> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new UserError("no such file or folder", { file: displayName, hint: "check the input path" });
  }
  if (info.isDirectory()) {
    const names = (await readdir(path)).filter((n) => !n.startsWith(".")).sort();
    // A folder of data shards (e.g. datasets' save_to_disk: data-00000-of-00002.arrow, …).
    for (const f of ["arrow", "parquet", "jsonl"] as const) {
      const shards = names.filter((n) => formatFromName(n) === f && (format === "auto" || format === f));
      if (shards.length > 0) {
        for (const s of shards) yield* located(readerFor(f)(join(path, s), join(displayName, s)), join(displayName, s));
        return;
      }
    }
    if (format !== "auto" && format !== "text") {
      throw new UserError(`folder has no .${format} files`, { file: displayName });
    }
    yield* located(readTextDir(path, displayName), displayName);
    return;
  }
  if (!info.isFile()) throw new UserError("not a regular file or folder", { file: displayName });
  const f = format === "auto" ? formatFromName(path) : format;
  if (f === undefined) {
    throw new UserError("cannot tell the file format from its name", {
      file: displayName,
      hint: 'set "format" to jsonl, parquet, arrow, csv or text',
    });
  }
  if (f === "text") {
    yield await readTextFile(path, displayName);
    return;
  }
  yield* located(readerFor(f)(path, displayName), displayName);
}

/**
 * A reader's rows, with any failure of what decodes them (zlib, csv-parse, apache-arrow, hyparquet,
 * the file system) turned into a UserError naming the file and the row it stopped before.
 */
async function* located(rows: AsyncGenerator<SourceRow>, displayName: string): AsyncGenerator<SourceRow> {
  let line = 0;
  try {
    for await (const row of rows) {
      line = row.line;
      yield row;
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(describeReadFailure(e), { file: displayName, line: line + 1 });
  }
}

/** What went wrong reading a file, in words (no library internals). */
export function describeReadFailure(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case "Z_BUF_ERROR":
      return "the compressed data ends early: the file is truncated";
    case "Z_DATA_ERROR":
      return /header/.test(err.message) ? "not gzip data, though the name or first bytes say so" : "the compressed data is corrupt";
    case "ENOENT":
    case "EACCES":
    case "EISDIR":
    case "EIO":
      return `cannot read (${err.code})`;
  }
  // A TypeError or RangeError from a decoder is its reaction to bytes it did not expect.
  return e instanceof TypeError || e instanceof RangeError ? "corrupt or truncated data" : `unreadable (${err?.message ?? String(e)})`;
}

export type { SourceRow } from "./source-row.js";
