// Worker threads on the project's own modules, whether running built JavaScript (dist/*.js) or the
// TypeScript sources (tests, `pnpm owntune`, benches), where the thread registers tsx's loader first;
// and a fixed pool of them answering jobs, with the protocol both sides speak.
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { pathToFileURL } from "node:url";
import { parentPort, Worker, type TransferListItem } from "node:worker_threads";
import { UserError } from "./errors.js";

/** Default size of a pool of worker threads: one per core. */
export const defaultThreadCount = (): number => Math.max(1, availableParallelism());

/**
 * Starts a worker thread on the module `name` (no extension) next to `callerUrl` (the caller's
 * `import.meta.url`): `name.js` when the caller is built code, `name.ts` through tsx's `tsImport`
 * when the caller is itself a TypeScript source.
 */
export function startModuleWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  if (!callerUrl.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, callerUrl), { workerData });
  const tsxApi = pathToFileURL(
    createRequire(callerUrl)
      .resolve("tsx/esm/api")
      .replace(/\.cjs$/, ".mjs"),
  ).href;
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(callerUrl)}));`;
  return new Worker(boot, { eval: true, workerData, execArgv: ["--conditions=@owntune/source"] });
}

/** An error as it crosses threads: a UserError keeps its location, anything else its stack. */
interface WireError {
  name: string;
  message: string;
  stack?: string;
  file?: string;
  line?: number;
  field?: string;
  hint?: string;
}

type Reply<R> = { id: number; result: R } | { id: number; error: WireError };

/** What a job's answer hands over instead of copying (its typed arrays' buffers). */
export type TransferOf<T> = (value: T) => readonly TransferListItem[];

/**
 * The worker side of ThreadPool: answers each job posted to this thread with `handle(job)`, its
 * result's buffers transferred. Errors go back to the pool, which rejects that job's promise.
 */
export function serveJobs<J, R>(handle: (job: J) => R | Promise<R>, transfer: TransferOf<R> = () => []): void {
  const port = parentPort;
  if (!port) throw new Error("serveJobs must run in a worker thread");
  port.on("message", async (msg: { id: number; job: J }) => {
    try {
      const result = await handle(msg.job);
      port.postMessage({ id: msg.id, result } satisfies Reply<R>, transfer(result));
    } catch (e) {
      const err = e as Error & Partial<WireError>;
      const error: WireError = {
        name: err.name,
        message: err.message,
        stack: err.stack,
        file: err.file,
        line: err.line,
        field: err.field,
        hint: err.hint,
      };
      port.postMessage({ id: msg.id, error } satisfies Reply<R>);
    }
  });
}

interface Pending<R> {
  resolve(r: R): void;
  reject(e: Error): void;
}

/**
 * A fixed pool of worker threads running the module `name` (next to `callerUrl`, see
 * startModuleWorker), which answers jobs through `serveJobs`. Jobs go to whichever thread is free;
 * each `run` promise settles with its own job's result, so callers that keep the promises in order
 * get results in submission order whatever the scheduling. Close it when done: its threads keep
 * the process alive.
 */
export class ThreadPool<J, R> {
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly queue: Array<{ id: number; job: J; transfer: readonly TransferListItem[] }> = [];
  private readonly pending = new Map<number, Pending<R>>();
  private nextId = 0;
  private failure: Error | undefined;
  private closed = false;

  constructor(
    callerUrl: string,
    name: string,
    readonly size: number,
    workerData?: unknown,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a thread pool needs a positive integer size, got ${size}`);
    for (let i = 0; i < size; i++) {
      const w = startModuleWorker(callerUrl, name, workerData);
      w.on("message", (msg: Reply<R>) => {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        this.idle.push(w);
        this.pump();
        if (!p) return;
        if ("error" in msg) p.reject(reviveError(msg.error));
        else p.resolve(msg.result);
      });
      w.on("error", (e) => this.fail(e));
      w.on("exit", (code) => {
        if (!this.closed) this.fail(new Error(`worker thread ${name} exited with code ${code}`));
      });
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const { id, job, transfer } = this.queue.shift()!;
      this.idle.shift()!.postMessage({ id, job }, transfer);
    }
  }

  /** Queues a job (`transfer`: buffers handed over instead of copied); settles with its result. */
  run(job: J, transfer: readonly TransferListItem[] = []): Promise<R> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error("the thread pool is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.queue.push({ id, job, transfer });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function reviveError(e: WireError): Error {
  if (e.name === "UserError") return new UserError(e.message, { file: e.file, line: e.line, field: e.field, hint: e.hint });
  const err = new Error(e.message);
  if (e.stack) err.stack = e.stack;
  return err;
}
