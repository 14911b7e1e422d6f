// TensorFlow.js backend selection: tfjs-node (libtensorflow) when it loads, else the wasm backend with
// one XNNPACK thread per core, else the pure-JS cpu backend. `--backend` / OWNTUNE_BACKEND forces one.
// Reference: design.md §Backends and memory; tfjs-backend-wasm 4.22 (backend_wasm.ts, flags_wasm.ts).
import { availableParallelism } from "node:os";
import { createRequire } from "node:module";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { tmpdir } from "node:os";
import type { Worker } from "node:worker_threads";
import * as tf from "@tensorflow/tfjs";
import * as tfWasm from "@tensorflow/tfjs-backend-wasm";
import { UserError } from "@owntune/core";

/** The backends owntune knows, by their tfjs registry names. */
export const BACKEND_NAMES = ["tensorflow", "wasm", "cpu"] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

/** What ran the numbers: printed by the CLI at start and written into run records. */
export interface BackendInfo {
  name: BackendName;
  /** Compute threads the backend uses (wasm: XNNPACK pool size; cpu: 1; tensorflow: intra-op pool, 0 = its default). */
  threads: number;
  /** @tensorflow/tfjs version. */
  version: string;
  /** Why this backend (forced by flag/env, or the fallback chain and what failed on it). */
  reason: string;
}

export interface BackendOptions {
  /** Force a backend (`tensorflow` / `tfjs-node` / `node`, `wasm`, `cpu`); default: OWNTUNE_BACKEND, else the fallback chain. */
  backend?: string;
  /** wasm threads; default OWNTUNE_WASM_THREADS, else one per core. 1 = the single-threaded SIMD build. */
  threads?: number;
}

const ALIASES: Record<string, BackendName> = {
  tensorflow: "tensorflow",
  "tfjs-node": "tensorflow",
  node: "tensorflow",
  wasm: "wasm",
  cpu: "cpu",
};

/** Parses a backend name as a user typed it; `origin` names the flag or variable in the error. */
export function parseBackendName(text: string, origin = "--backend"): BackendName {
  const name = ALIASES[text.trim().toLowerCase()];
  if (!name) {
    throw new UserError(`unknown backend "${text}"`, { field: origin, hint: `use one of: tfjs-node, wasm, cpu` });
  }
  return name;
}

let current: BackendInfo | undefined;
let pending: Promise<BackendInfo> | undefined;

/**
 * Selects and initializes the backend once per process; later calls return the same info (a call that
 * forces a different backend than the one running switches to it). Throws UserError when a forced
 * backend cannot start.
 */
export async function initBackend(options: BackendOptions = {}): Promise<BackendInfo> {
  const forcedText = options.backend ?? process.env.OWNTUNE_BACKEND;
  const forced =
    forcedText !== undefined && forcedText !== ""
      ? parseBackendName(forcedText, options.backend !== undefined ? "--backend" : "OWNTUNE_BACKEND")
      : undefined;
  if (current && (forced === undefined || forced === current.name)) return current;
  if (pending && forced === undefined) return pending;
  pending = select(forced, options.threads);
  try {
    current = await pending;
    return current;
  } finally {
    pending = undefined;
  }
}

/** `wasm (2 threads, tfjs 4.22.0)`: the line the CLI prints at start. */
export function describeBackend(info: BackendInfo): string {
  const threads = info.threads > 0 ? `${info.threads} thread${info.threads === 1 ? "" : "s"}, ` : "";
  return `${info.name === "tensorflow" ? "tfjs-node" : info.name} (${threads}tfjs ${info.version}; ${info.reason})`;
}

async function select(forced: BackendName | undefined, threadsOption: number | undefined): Promise<BackendInfo> {
  // PROD skips per-op debug checks and silences tfjs's "install tfjs-node" banner on the cpu backend.
  tf.enableProdMode();
  const failures: string[] = [];
  const order: BackendName[] = forced ? [forced] : ["tensorflow", "wasm", "cpu"];
  for (const name of order) {
    try {
      const threads = await start(name, threadsOption);
      const reason = forced ? "forced" : failures.length === 0 ? "first choice" : failures.join("; ");
      return { name, threads, version: tf.version.tfjs, reason };
    } catch (e) {
      const why = shortReason(e);
      if (forced)
        throw new UserError(`backend ${name} failed to start: ${why}`, {
          hint: "unset OWNTUNE_BACKEND / --backend to fall back automatically",
        });
      failures.push(`${name === "tensorflow" ? "tfjs-node" : name} unavailable: ${why}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${failures.join("; ")}`);
}

async function start(name: BackendName, threadsOption: number | undefined): Promise<number> {
  switch (name) {
    case "tensorflow": {
      // Optional dependency: its install downloads libtensorflow, so it is often absent.
      const spec = "@tensorflow/tfjs-node";
      await import(/* @vite-ignore */ spec);
      if (!(await tf.setBackend("tensorflow"))) throw new Error("tf.setBackend('tensorflow') returned false");
      return 0;
    }
    case "wasm": {
      const wanted = threadsOption ?? envInt("OWNTUNE_WASM_THREADS") ?? availableParallelism();
      if (wanted > 1) {
        try {
          return await startThreadedWasm(wanted);
        } catch {
          // Fall through to the single-threaded build below.
        }
      }
      tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", false);
      if (!(await tf.setBackend("wasm"))) throw new Error("tf.setBackend('wasm') returned false");
      return 1;
    }
    case "cpu":
      if (!(await tf.setBackend("cpu"))) throw new Error("tf.setBackend('cpu') returned false");
      return 1;
  }
}

/** One short clause for the start line: tfjs-node's missing-addon error is a paragraph. */
function shortReason(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  if (/tfjs_binding\.node|Cannot find (module|package) '@tensorflow\/tfjs-node'/.test(message)) return "not installed";
  const first = message.split("\n")[0]!.trim();
  return first.length > 120 ? first.slice(0, 117) + "..." : first;
}

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UserError(`expected a positive integer, got "${v}"`, { field: name });
  return n;
}

/**
 * tfjs-backend-wasm 4.22 turns threads off under Node (WASM_HAS_MULTITHREAD_SUPPORT is false there,
 * tfjs issue #3830), although its Emscripten glue runs pthreads on worker_threads. Three things stand in
 * the way, each worked around here for the duration of the init only:
 *  1. the pthread worker script is handed to `new Worker` as a blob: URL, which Node refuses — we write
 *     it (and the main script the workers import) to a temp folder and hand out those paths instead;
 *  2. the C side caps the pool at navigator.hardwareConcurrency / 2 (it assumes hyper-threading), which
 *     under Node is os.cpus().length / 2 — we double the count it sees during init;
 *  3. idle pthread workers keep the event loop alive — we unref them so the process can exit.
 * Measured on 2 cores: dense matMul 20–26 → 50–56 GFLOP/s.
 */
async function startThreadedWasm(threads: number): Promise<number> {
  const require = createRequire(import.meta.url);
  const pkgDir = dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json"));
  const factory = require(join(pkgDir, "wasm-out/tfjs-backend-wasm-threaded-simd.js")) as { toString(): string };
  const { wasmWorkerContents } = require(join(pkgDir, "wasm-out/tfjs-backend-wasm-threaded-simd.worker.js")) as {
    wasmWorkerContents: string;
  };
  const dir = mkdtempSync(join(tmpdir(), "owntune-wasm-"));
  const mainPath = join(dir, "main.js");
  const workerPath = join(dir, "worker.js");
  // The workers importScripts() the main script; inside a worker the blob URL lookup is replaced by our file.
  writeFileSync(mainPath, `var _scriptDir = undefined; var WasmBackendModuleThreadedSimd = ${factory.toString()};`);
  writeFileSync(
    workerPath,
    `URL.createObjectURL = () => ${JSON.stringify(mainPath)}; URL.revokeObjectURL = () => {};\n` +
      // tfjs escapes newlines the same way before making its blob (backend_wasm.ts init()).
      wasmWorkerContents.replace(/\n/g, "\\n"),
  );
  const os = require("node:os") as typeof import("node:os");
  const realCpus = os.cpus;
  const realCreateObjectURL = URL.createObjectURL;
  try {
    URL.createObjectURL = (blob: Blob) => (blob.type === "application/javascript" ? workerPath : realCreateObjectURL(blob));
    os.cpus = () => {
      const c = realCpus();
      return [...c, ...c];
    };
    tf.env().set("WASM_HAS_MULTITHREAD_SUPPORT", true);
    tfWasm.setThreadsCount(threads);
    if (!(await tf.setBackend("wasm"))) throw new Error("threaded wasm failed to start");
  } finally {
    URL.createObjectURL = realCreateObjectURL;
    os.cpus = realCpus;
  }
  const module = (tf.backend() as unknown as { wasm: { PThread?: { unusedWorkers: Worker[]; runningWorkers: Worker[] } } }).wasm;
  for (const w of [...(module.PThread?.unusedWorkers ?? []), ...(module.PThread?.runningWorkers ?? [])]) {
    (w as unknown as { unref(): void }).unref();
  }
  // Workers the pool adds later would read these files again, so they stay until the process exits.
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return tfWasm.getThreadsCount();
}
