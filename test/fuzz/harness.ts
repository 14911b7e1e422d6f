// Seeded in-process fuzzing of the parsers we own or front: each case is a valid file mutated (bit
// flips, truncation, spliced or deleted runs, huge little-endian integers, numbers in text replaced by
// extreme ones), parsed in full. Every outcome must be success or a UserError within a time bound:
// never a hang, another exception (a bug), or an allocation sized by a field nobody checked. Cases run
// in a worker thread that is ended when one takes too long, so even a synchronous loop is caught.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isUserError, startModuleWorker } from "@owntune/core";

/** A parser under test: a valid input, and how one (mutated) input is parsed in full. */
export interface FuzzTarget {
  name: string;
  /** Builds the valid input (may leave files it needs in `dir`). */
  setup(dir: string): Promise<Uint8Array>;
  /** Writes `bytes` where the parser reads them and parses everything (case `index` may use its own file names). */
  parse(bytes: Uint8Array, dir: string, index: number): Promise<unknown>;
  /** A systematic mutation instead of the random ones (case 0 is still the valid input). */
  mutate?(base: Uint8Array, index: number): { bytes: Uint8Array; mutation: string };
}

/** One parse may take this long: the inputs are kilobytes, so seconds mean a loop on a corrupt field. */
export const CASE_TIME_BOUND_MS = 5_000;
/** Building a target's valid input (a small curate run at most). */
const SETUP_TIME_BOUND_MS = 120_000;
/** Array-buffer memory a case may leave allocated: inputs are kilobytes, so more is sized by a bad field. */
export const CASE_MEMORY_BOUND_BYTES = 256 << 20;

export interface FuzzFailure {
  index: number;
  mutation: string;
  problem: string;
}

export interface FuzzReport {
  target: string;
  cases: number;
  /** Parsed without error. */
  accepted: number;
  /** Refused with a UserError (exit 2). */
  refused: number;
  failures: FuzzFailure[];
  seconds: number;
  slowestMs: number;
  /** One refusal message per distinct first words, to read what users would see. */
  messages: string[];
}

/** xorshift32: a tiny seeded generator, so a failing case is reproduced from (seed, index). */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

const HUGE_NUMBERS = ["99999999999999999999", "1e308", "-1", "0", "4294967296", "9007199254740993", "2147483648", "-0", "1.5", "NaN"];
const LE_VALUES = [0xffffffffn, 0x7fffffffn, 0xffffffffffffffffn, 2n ** 53n + 1n, 2n ** 40n, 0n];
const SPECIAL_BYTES = [0x00, 0xff, 0x7f, 0x80, 0x22, 0x7b, 0x5b, 0x0a, 0x2c, 0x3a, 0x5c, 0xc3];

/** Case `index` of `seed`: a mutation of `base` and its description. */
export function mutate(base: Uint8Array, seed: number, index: number): { bytes: Uint8Array; mutation: string } {
  const r = rng((seed * 0x01000193) ^ (index * 0x9e3779b1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // Half of the positions fall in the first 4 kB, where headers and lengths live.
  const pos = (n: number) => (n === 0 ? 0 : Math.floor(r() < 0.5 ? r() * Math.min(n, 4096) : r() * n));
  const kind = Math.floor(r() * 7);
  const b = Uint8Array.from(base);
  switch (kind) {
    case 0: {
      const flips = 1 + Math.floor(r() * 8);
      for (let i = 0; i < flips; i++) b[pos(b.length)]! ^= 1 << Math.floor(r() * 8);
      return { bytes: b, mutation: `${flips} bit flip(s)` };
    }
    case 1: {
      const at = pos(b.length);
      b[at] = pick(SPECIAL_BYTES);
      return { bytes: b, mutation: `byte ${at} = 0x${b[at]!.toString(16)}` };
    }
    case 2: {
      const n = Math.floor(r() * base.length);
      return { bytes: base.slice(0, n), mutation: `truncated to ${n} bytes` };
    }
    case 3: {
      const at = pos(base.length);
      const len = 1 + Math.floor(r() * 64);
      return {
        bytes: concat(base.subarray(0, at), base.subarray(Math.min(base.length, at + len))),
        mutation: `${len} bytes deleted at ${at}`,
      };
    }
    case 4: {
      const from = pos(base.length);
      const len = 1 + Math.floor(r() * 64);
      const at = pos(base.length);
      return {
        bytes: concat(base.subarray(0, at), base.subarray(from, from + len), base.subarray(at)),
        mutation: `${len} bytes of ${from} inserted at ${at}`,
      };
    }
    case 5: {
      const at = Math.min(pos(b.length), Math.max(0, b.length - 8)) & ~3;
      const v = pick(LE_VALUES);
      const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (at + 8 <= b.length) view.setBigUint64(at, v, true);
      return { bytes: b, mutation: `u64 ${v} at ${at}` };
    }
    default: {
      // A number written in text (JSON, YAML, CSV, a safetensors header) replaced by an extreme one.
      const text = Buffer.from(base).toString("latin1");
      const runs = [...text.matchAll(/-?\d+(\.\d+)?/g)];
      if (runs.length === 0) return { bytes: b.slice(0, Math.floor(r() * b.length)), mutation: "truncated (no number to replace)" };
      const m = pick(runs);
      const repl = pick(HUGE_NUMBERS);
      const out = text.slice(0, m.index) + repl + text.slice(m.index! + m[0].length);
      return { bytes: Uint8Array.from(Buffer.from(out, "latin1")), mutation: `number "${m[0]}" at ${m.index} → ${repl}` };
    }
  }
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** What the worker (fuzz/worker.ts) reports: a case starting, a case's outcome, or the end. */
export type WorkerMessage =
  | { kind: "start"; index: number; mutation: string }
  | {
      kind: "case";
      index: number;
      mutation: string;
      outcome: "accepted" | "refused" | "failed";
      message?: string;
      ms: number;
      grown: number;
    }
  | { kind: "done" };

/** Case `index` of `target`: the valid input itself for 0, else a mutation of it. */
export function caseInput(target: FuzzTarget, base: Uint8Array, seed: number, index: number): { bytes: Uint8Array; mutation: string } {
  if (index === 0) return { bytes: base, mutation: "none (the valid input)" };
  return target.mutate ? target.mutate(base, index) : mutate(base, seed, index);
}

/** Case i writes the i%4-th extreme value as a u64 at the 4-byte-aligned offset (i-1)/4·4: every length and offset of a header in turn. */
export function extremeWord(base: Uint8Array, index: number): { bytes: Uint8Array; mutation: string } {
  const at = Math.floor((index - 1) / 4) * 4;
  const v = [0xffffffffn, 0x7fffffffn, 0xffffffffffffffffn, 0n][(index - 1) % 4]!;
  const b = Uint8Array.from(base);
  if (at + 8 <= b.length) new DataView(b.buffer).setBigUint64(at, v, true);
  return { bytes: b, mutation: `u64 0x${v.toString(16)} at ${at}` };
}

/** One case, run where it is called: its outcome, time and the array-buffer memory it left allocated. */
export async function runCase(
  target: FuzzTarget,
  input: { bytes: Uint8Array; mutation: string },
  dir: string,
  index: number,
): Promise<Extract<WorkerMessage, { kind: "case" }>> {
  const { bytes, mutation } = input;
  const before = process.memoryUsage().arrayBuffers;
  const start = performance.now();
  let outcome: "accepted" | "refused" | "failed" = "accepted";
  let message: string | undefined;
  try {
    await target.parse(bytes, dir, index);
  } catch (e) {
    if (isUserError(e)) {
      outcome = "refused";
      message = e.format().split("\n")[0]!.replace(dir, "<dir>");
    } else {
      const err = e as Error;
      outcome = "failed";
      message = `${err?.name ?? typeof e}: ${err?.message ?? String(e)}${err?.stack ? `\n${err.stack.split("\n").slice(1, 4).join("\n")}` : ""}`;
    }
  }
  return {
    kind: "case",
    index,
    mutation,
    outcome,
    message,
    ms: performance.now() - start,
    grown: process.memoryUsage().arrayBuffers - before,
  };
}

/**
 * Runs `cases` mutations of the target's valid input (case 0 is the input itself, which must parse)
 * in a worker thread watched from here: a case that does not answer within the time bound (even a
 * synchronous endless loop) is a failure, its thread is ended, and the rest go on in a new one.
 */
export async function runFuzz(target: FuzzTarget, options: { cases: number; seed: number }): Promise<FuzzReport> {
  const report: FuzzReport = {
    target: target.name,
    cases: 0,
    accepted: 0,
    refused: 0,
    failures: [],
    seconds: 0,
    slowestMs: 0,
    messages: [],
  };
  const seen = new Set<string>();
  const record = (m: Extract<WorkerMessage, { kind: "case" }>) => {
    report.cases++;
    report.slowestMs = Math.max(report.slowestMs, m.ms);
    const fail = (problem: string) => report.failures.push({ index: m.index, mutation: m.mutation, problem });
    if (m.outcome === "accepted") report.accepted++;
    else if (m.outcome === "refused") {
      report.refused++;
      const key = m.message!.replace(/\d+/g, "#").slice(0, 60);
      if (!seen.has(key) && report.messages.length < 40) {
        seen.add(key);
        report.messages.push(m.message!);
      }
    } else fail(m.message!);
    if (m.ms > CASE_TIME_BOUND_MS) fail(`took ${m.ms.toFixed(0)} ms`);
    if (m.grown > CASE_MEMORY_BOUND_BYTES) fail(`left ${(m.grown / 2 ** 20).toFixed(0)} MiB of array buffers allocated`);
    if (m.index === 0 && m.outcome !== "accepted") fail("the valid input itself was refused");
  };
  const t0 = performance.now();
  let next = 0;
  while (next < options.cases) {
    const from = next;
    const dir = await mkdtemp(join(tmpdir(), `owntune-fuzz-${target.name.replace(/\W+/g, "-")}-`));
    let current: { index: number; mutation: string } | undefined;
    try {
      const finished = await new Promise<boolean>((resolve, reject) => {
        const worker = startModuleWorker(import.meta.url, "worker", {
          target: target.name,
          seed: options.seed,
          from,
          to: options.cases,
          dir,
        });
        let timer: NodeJS.Timeout | undefined;
        // The setup (a small curate run) may take seconds; each case, milliseconds.
        const watch = (ms: number) => {
          clearTimeout(timer);
          timer = setTimeout(() => void worker.terminate().then(() => resolve(false)), ms);
        };
        watch(SETUP_TIME_BOUND_MS);
        worker.on("error", (e) => {
          clearTimeout(timer);
          reject(e);
        });
        worker.on("message", (m: WorkerMessage) => {
          if (m.kind === "start") {
            current = m;
            watch(CASE_TIME_BOUND_MS);
          } else if (m.kind === "done") {
            clearTimeout(timer);
            void worker.terminate().then(() => resolve(true));
          } else {
            current = undefined;
            next = m.index + 1;
            record(m);
          }
        });
      });
      if (finished) break;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    if (!current) throw new Error(`${target.name}: the setup did not finish within ${SETUP_TIME_BOUND_MS} ms`);
    report.cases++;
    report.failures.push({
      index: current.index,
      mutation: current.mutation,
      problem: `did not finish within ${CASE_TIME_BOUND_MS} ms (its thread was ended)`,
    });
    next = current.index + 1;
  }
  report.seconds = (performance.now() - t0) / 1000;
  return report;
}

/** One line per failure, for an assertion message. */
export function describeFailures(r: FuzzReport): string {
  return r.failures
    .slice(0, 10)
    .map((f) => `${r.target} case ${f.index} (${f.mutation}): ${f.problem}`)
    .join("\n");
}
