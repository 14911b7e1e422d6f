// Opens one configured input as a stream of rows: picks the reader from the format (or the file
// extension), and handles folders (a `datasets` save_to_disk folder of .arrow shards, a folder of
// .parquet/.jsonl shards, or a folder of .txt/.md files).
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "@owntune/model/core";
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
 * the user wrote it). `format` "auto" picks from extensions.
 */
export async function* readInput(path: string, format: FileFormat | "auto", displayName = path): AsyncGenerator<SourceRow> {
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
        for (const s of shards) yield* readerFor(f)(join(path, s), join(displayName, s));
        return;
      }
    }
    if (format !== "auto" && format !== "text") {
      throw new UserError(`folder has no .${format} files`, { file: displayName });
    }
    yield* readTextDir(path, displayName);
    return;
  }
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
  yield* readerFor(f)(path, displayName);
}

export type { SourceRow } from "./source-row.js";
