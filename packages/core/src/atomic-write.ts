// Atomic file and directory writing: data goes to a temporary name in the same folder, is fsynced,
// then renamed into place, so a crash or Ctrl-C never leaves a half-written file under a final name.
import { randomBytes } from "node:crypto";
import { closeSync, constants, promises as fsp, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "./errors.js";

/**
 * Temporary paths not yet committed, with the descriptor still open on each file; removed on
 * process exit (and by the CLI's signal handler).
 */
const pending = new Map<string, number | undefined>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", removePendingTemps);
}

/** Deletes every temp file/dir that was opened but never committed. Safe to call more than once. */
export function removePendingTemps(): void {
  for (const [p, fd] of pending) {
    try {
      if (fd !== undefined) closeSync(fd);
    } catch {
      // already closed
    }
    try {
      rmSync(p, { recursive: true, force: true });
    } catch {
      // best effort: the process is going away
    }
  }
  pending.clear();
}

/** A temporary sibling of `finalPath`: same folder (so rename is atomic), hidden, unique. */
export function tempPathFor(finalPath: string): string {
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  return join(dirname(finalPath), `.${basename(finalPath)}.tmp-${tag}`);
}

/** `.NAME.tmp-PID-HEX` (and its `-old` form): the names tempPathFor makes, with the writer's pid. */
const TEMP_NAME = /^\.(.+)\.tmp-(\d+)-[0-9a-f]{8}(?:-old)?$/;

/** True for a name tempPathFor makes (a write in progress, or one a killed process left). */
export function isTempName(name: string): boolean {
  return TEMP_NAME.test(name);
}

/** Whether a process with this pid is running (a pid we cannot signal but that exists counts as alive). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the temporary files and folders that writers killed mid-write (kill -9, power loss) left in
 * `dir`: names made by tempPathFor whose process is no longer running. Temps of live processes,
 * including this one, are left alone. Returns the names removed (empty when `dir` does not exist).
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = TEMP_NAME.exec(name);
    if (!m || processAlive(Number(m[2]))) continue;
    await fsp.rm(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, constants.O_RDONLY);
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    await fh?.close();
  }
}

/** A file being written under a temporary name; `commit` renames it into place, `abort` removes it. */
export interface AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  /** Appends bytes (or UTF-8 text) at the current end. */
  write(chunk: Uint8Array | string): Promise<void>;
  /** Writes at an absolute byte offset (for headers patched after the data). */
  writeAt(chunk: Uint8Array, position: number): Promise<void>;
  /** Bytes appended so far. */
  readonly bytesWritten: number;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Opens `finalPath` for streaming writes through a temporary file. */
export async function openAtomic(finalPath: string): Promise<AtomicFile> {
  installExitHook();
  await fsp.mkdir(dirname(finalPath), { recursive: true });
  const tempPath = tempPathFor(finalPath);
  const fh = await fsp.open(tempPath, "w");
  pending.set(tempPath, fh.fd);
  let offset = 0;
  let done = false;
  return {
    path: finalPath,
    tempPath,
    get bytesWritten() {
      return offset;
    },
    async write(chunk) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
      let written = 0;
      while (written < bytes.byteLength) {
        const r = await fh.write(bytes, written, bytes.byteLength - written, offset + written);
        written += r.bytesWritten;
      }
      offset += bytes.byteLength;
    },
    async writeAt(chunk, position) {
      let written = 0;
      while (written < chunk.byteLength) {
        const r = await fh.write(chunk, written, chunk.byteLength - written, position + written);
        written += r.bytesWritten;
      }
    },
    async commit() {
      if (done) throw new Error(`atomic write of ${finalPath} already finished`);
      done = true;
      await fh.sync();
      await fh.close();
      await fsp.rename(tempPath, finalPath);
      pending.delete(tempPath);
      await fsyncDir(dirname(finalPath));
    },
    async abort() {
      if (done) return;
      done = true;
      await fh.close().catch(() => undefined);
      await fsp.rm(tempPath, { force: true });
      pending.delete(tempPath);
    },
  };
}

/**
 * Streams into `finalPath` through `fn`; the file appears only if `fn` resolves.
 * If `fn` throws, the temporary file is removed and the error propagates.
 */
export async function withAtomicFile<T>(finalPath: string, fn: (file: AtomicFile) => Promise<T>): Promise<T> {
  const file = await openAtomic(finalPath);
  try {
    const result = await fn(file);
    await file.commit();
    return result;
  } catch (e) {
    await file.abort();
    throw e;
  }
}

/** Writes a whole file atomically. */
export async function writeFileAtomic(finalPath: string, data: Uint8Array | string): Promise<void> {
  await withAtomicFile(finalPath, (f) => f.write(data));
}

/**
 * Runs `fn` with a scratch folder beside `near` (a temporary name in the same folder), removed when
 * `fn` ends, whether it resolves or throws, and on exit or Ctrl-C like every pending temporary.
 */
export async function withTempDir<T>(near: string, fn: (dir: string) => Promise<T>): Promise<T> {
  installExitHook();
  await fsp.mkdir(dirname(near), { recursive: true });
  const dir = tempPathFor(near);
  pending.set(dir, undefined);
  await fsp.mkdir(dir);
  try {
    return await fn(dir);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
    pending.delete(dir);
  }
}

/**
 * Builds a directory under a temporary name and renames it to `finalDir` when `fn` resolves.
 * An existing `finalDir` is replaced only then (it is moved aside first and removed after), so a
 * failed run leaves the previous output, or nothing, under the final name. A file under that name is
 * never replaced (whether a folder may be is the caller's rule: claimOutputDir).
 */
export async function withAtomicDir<T>(finalDir: string, fn: (tempDir: string) => Promise<T>): Promise<T> {
  installExitHook();
  await refuseFile(finalDir);
  await fsp.mkdir(dirname(finalDir), { recursive: true });
  const tempDir = tempPathFor(finalDir);
  pending.set(tempDir, undefined);
  await fsp.mkdir(tempDir);
  let result: T;
  try {
    result = await fn(tempDir);
  } catch (e) {
    await fsp.rm(tempDir, { recursive: true, force: true });
    pending.delete(tempDir);
    throw e;
  }
  try {
    await refuseFile(finalDir);
  } catch (e) {
    await fsp.rm(tempDir, { recursive: true, force: true });
    pending.delete(tempDir);
    throw e;
  }
  const old = tempPathFor(finalDir) + "-old";
  let moved = false;
  try {
    await fsp.rename(finalDir, old);
    moved = true;
    pending.set(old, undefined);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  await fsp.rename(tempDir, finalDir);
  pending.delete(tempDir);
  if (moved) {
    await fsp.rm(old, { recursive: true, force: true });
    pending.delete(old);
  }
  await fsyncDir(dirname(finalDir));
  return result;
}

/** Why a file is left where it is: an output folder never takes its place. */
export const FILE_NOT_REPLACED = "is an existing file; owntune never replaces a file with an output folder";

/** Throws when `path` exists and is not a folder (a user's file must never be swapped for an output). */
async function refuseFile(path: string): Promise<void> {
  let stat;
  try {
    stat = await fsp.lstat(path);
  } catch {
    return;
  }
  if (!stat.isDirectory()) throw new UserError(FILE_NOT_REPLACED, { file: path });
}
