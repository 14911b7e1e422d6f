// A training run directory: run.json (what was trained on what, with which settings, and how far it
// got), metrics.jsonl (one row per step and per evaluation), a lock against two trainers writing at
// once, and the identity of the base model and dataset that decides whether a run may be resumed.
// Reference: design.md "Files" (run directory).
import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { appendFile, open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { RUN_FORMAT, UserError, writeFileAtomic } from "@owntune/core";

export const RUN_FORMAT_VERSION = 1;
export const RUN_FILE = "run.json";
export const METRICS_FILE = "metrics.jsonl";
export const SAMPLES_FILE = "samples.jsonl";
export const ADAPTER_DIR = "adapter";
export const REPORT_FILE = "report.html";
export const LOCK_FILE = ".owntune-train.lock";

export type RunStatus = "running" | "interrupted" | "stopped" | "complete";

/** Identity of the inputs: a run resumes only on the same base model and the same dataset. */
export interface RunIdentity {
  model: { config_sha256: string; tokenizer_sha256: string; weights: Array<{ file: string; bytes: number; fingerprint: string }> };
  dataset: { manifest_sha256: string; rows: number; seq_len: number };
  runtime: { kernels: string; base_dtype: string };
}

/** run.json. */
export interface RunRecord {
  format: typeof RUN_FORMAT;
  format_version: number;
  status: RunStatus;
  /** Why the run is not complete (interrupted at step N, stopped by a non-finite loss, …). */
  status_detail?: string;
  created_at: string;
  updated_at: string;
  model_dir: string;
  data_dir: string;
  /** The resolved training config (every default filled in). */
  config: Record<string, unknown>;
  seed: number;
  identity: RunIdentity;
  versions: Record<string, string>;
  backend: string;
  plan: { trainable_parameters: number; total_parameters: number; modules: number; skipped: string[]; layers: string };
  steps: { total: number; done: number; rows_per_step: number; tokens_per_step: number };
  memory_estimate_bytes: number;
  /** Step whose weights adapter/ holds (the best one under keep_best). */
  adapter_step?: number;
  final?: { loss: number | null; eval_loss: number | null; eval_perplexity: number | null; tokens_per_s: number; elapsed_s: number };
}

/** run.json of `dir`, undefined when there is none; a run.json of another kind is a UserError. */
export async function readRunRecord(dir: string): Promise<RunRecord | undefined> {
  const file = join(dir, RUN_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return undefined;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new UserError("not valid JSON", { file, hint: "this folder does not hold an owntune training run; choose another --out" });
  }
  const r = raw as Partial<RunRecord> | null;
  if (!r || r.format !== RUN_FORMAT)
    throw new UserError(`not an owntune run record (format ${JSON.stringify(r?.format)})`, { file, hint: "choose another --out" });
  if (r.format_version !== RUN_FORMAT_VERSION) {
    throw new UserError(`run format ${String(r.format_version)}, this owntune reads ${RUN_FORMAT_VERSION}`, {
      file,
      hint: "resume with the owntune version that started it, or choose another --out",
    });
  }
  return r as RunRecord;
}

export async function writeRunRecord(dir: string, record: RunRecord): Promise<void> {
  record.updated_at = new Date().toISOString();
  await writeFileAtomic(join(dir, RUN_FILE), JSON.stringify(record, null, 2) + "\n");
}

/** One metrics row: `{"type": "train", "step": …}` or `{"type": "eval", …}`. */
export type MetricsRow = { type: "train" | "eval"; step: number } & Record<string, unknown>;

export async function appendJsonl(dir: string, file: string, rows: readonly object[]): Promise<void> {
  if (rows.length === 0) return;
  await appendFile(join(dir, file), rows.map((r) => JSON.stringify(r) + "\n").join(""));
}

/**
 * Rows of a JSONL log up to and including `step` (rows of a run that went on past its last
 * checkpoint are dropped, as is a line a kill cut short); the file is rewritten to hold just those.
 */
export async function truncateJsonl(dir: string, file: string, step: number): Promise<Array<Record<string, unknown>>> {
  const path = join(dir, file);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch {
    return [];
  }
  const kept: Array<Record<string, unknown>> = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      const row = JSON.parse(line) as Record<string, unknown>;
      if (typeof row.step === "number" && row.step <= step) kept.push(row);
    } catch {
      // the last line of a killed run
    }
  }
  await writeFileAtomic(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  return kept;
}

/** Every row of a JSONL log of this run (unparsable lines skipped). */
export async function readJsonl(dir: string, file: string): Promise<Array<Record<string, unknown>>> {
  try {
    const text = await readFile(join(dir, file), "utf8");
    return text
      .split("\n")
      .filter((l) => l.trim() !== "")
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  } catch {
    return [];
  }
}

/**
 * Takes the run directory's lock (a file holding our pid); another live trainer's lock is a UserError.
 * A lock left by a dead process is taken over. Returns the release function (also run at exit).
 */
export function lockRunDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  if (existsSync(path)) {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
      throw new UserError(`another owntune train (pid ${pid}) is writing this run directory`, {
        file: dir,
        hint: "wait for it to finish, or stop it first",
      });
    }
  }
  const fd = openSync(path, "w");
  writeSync(fd, `${process.pid}\n`);
  closeSync(fd);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    try {
      if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
    } catch {
      // already gone
    }
  };
  process.once("exit", release);
  return release;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Bytes hashed in full below this size; larger weight files are fingerprinted by samples. */
const FULL_HASH_MAX_BYTES = 64 * 2 ** 20;
/** Blocks read from a large file for its fingerprint (with its header and size). */
const FINGERPRINT_BLOCKS = 32;
const FINGERPRINT_BLOCK_BYTES = 1 << 16;

/**
 * A content fingerprint of a weights file: its sha256 when small, else the sha256 of its size, its
 * first block (the safetensors header) and 32 blocks spread over it — enough to tell a re-initialised
 * or re-downloaded model from the one a run started on, without reading tens of gigabytes.
 */
export async function fileFingerprint(path: string): Promise<{ bytes: number; fingerprint: string }> {
  const { size } = await stat(path);
  const hash = createHash("sha256");
  const fh = await open(path, "r");
  try {
    if (size <= FULL_HASH_MAX_BYTES) {
      hash.update(await fh.readFile());
    } else {
      hash.update(`size:${size}`);
      const buf = Buffer.alloc(FINGERPRINT_BLOCK_BYTES);
      for (let k = 0; k <= FINGERPRINT_BLOCKS; k++) {
        const at = Math.floor(((size - FINGERPRINT_BLOCK_BYTES) * k) / FINGERPRINT_BLOCKS);
        const { bytesRead } = await fh.read(buf, 0, FINGERPRINT_BLOCK_BYTES, at);
        hash.update(buf.subarray(0, bytesRead));
      }
    }
  } finally {
    await fh.close();
  }
  return { bytes: size, fingerprint: hash.digest("hex") };
}

export function sha256Text(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The first difference between two JSON values as `path: a → b` (`optimizer.lr: 0.0002 → 0.0001`),
 * skipping top-level keys in `ignore`; undefined when equal.
 */
export function firstDifference(
  a: unknown,
  b: unknown,
  ignore: ReadonlySet<string> = new Set(),
  path: string[] = [],
): { path: string; before: unknown; after: unknown } | undefined {
  if (path.length === 1 && ignore.has(path[0]!)) return undefined;
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const d = firstDifference(a[k], b[k], ignore, [...path, k]);
      if (d) return d;
    }
    return undefined;
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return undefined;
  return { path: path.join("."), before: a, after: b };
}
