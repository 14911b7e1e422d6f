// Content hashes of inputs for manifest.json: sha256 of a file's bytes, or for a folder, sha256 over
// its files' relative paths and hashes in sorted order.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import { join, relative } from "node:path";

async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const h = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: h.digest("hex"), bytes };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.name.startsWith(".")) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** sha256 and size in bytes of a file or folder. */
export async function hashInput(path: string): Promise<{ sha256: string; bytes: number }> {
  if (!(await stat(path)).isDirectory()) return hashFile(path);
  const h = createHash("sha256");
  let bytes = 0;
  for (const f of await listFiles(path)) {
    const fh = await hashFile(f);
    h.update(`${relative(path, f)}\0${fh.sha256}\n`);
    bytes += fh.bytes;
  }
  return { sha256: h.digest("hex"), bytes };
}
