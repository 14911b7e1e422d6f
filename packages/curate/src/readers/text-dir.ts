// A folder of .txt / .md files: each file is one plain-text example ({ text }). Files are taken in
// sorted path order so runs are deterministic.
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { findInvalidUtf8, type SourceRow } from "./source-row.js";

const TEXT_EXTENSIONS = [".txt", ".md", ".markdown"];

async function listTextFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listTextFiles(p)));
    else if (TEXT_EXTENSIONS.some((e) => entry.name.toLowerCase().endsWith(e))) out.push(p);
  }
  return out;
}

/** Streams every text file under `dir` (recursively, sorted) as a `{ text }` row. */
export async function* readTextDir(dir: string, displayName = dir): AsyncGenerator<SourceRow> {
  const files = (await listTextFiles(dir)).sort();
  for (const f of files) yield await readTextFile(f, join(displayName, relative(dir, f)));
}

/** One text file as a `{ text }` row (or an invalid-UTF-8 error row naming the line). */
export async function readTextFile(path: string, displayName = path): Promise<SourceRow> {
  const bytes = await readFile(path);
  try {
    return { file: displayName, line: 1, value: { text: decoder.decode(bytes) }, bytes: bytes.length };
  } catch {
    const at = findInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    return { file: displayName, line, value: undefined, error: "invalid UTF-8", bytes: bytes.length };
  }
}

const decoder = new TextDecoder("utf-8", { fatal: true });
