// What every command shares: the global flags, where human output and JSON results go, progress, and
// reading flag values and JSONL input files with located errors.
import { readFile } from "node:fs/promises";
import { progressFor, UserError, type Progress } from "@owntune/core";
import type { Command } from "commander";

export interface GlobalFlags {
  json: boolean;
  debug: boolean;
}

/** Global flags as seen from inside a subcommand's action. */
export function globalFlags(cmd: Command): GlobalFlags {
  const o = cmd.optsWithGlobals() as { json?: boolean; debug?: boolean };
  return { json: o.json === true, debug: o.debug === true };
}

/** Where a command talks: results to stdout (JSON under --json), status lines to stderr. */
export interface CommandIO extends GlobalFlags {
  progress: Progress;
  /** A status line on stderr; silent under --json. */
  log(line: string): void;
  /** The command's result: `human` text normally, `data` as one JSON line under --json. */
  result(data: unknown, human?: string): void;
}

export function commandIO(cmd: Command): CommandIO {
  const flags = globalFlags(cmd);
  return {
    ...flags,
    progress: progressFor({ json: flags.json }),
    log(line) {
      if (!flags.json) process.stderr.write(line + "\n");
    },
    result(data, human) {
      if (flags.json) process.stdout.write(JSON.stringify(data) + "\n");
      else if (human !== undefined) process.stdout.write(human.endsWith("\n") ? human : human + "\n");
    },
  };
}

/** A number flag's value when `check` accepts it, else a UserError naming the flag and what it wants. */
export function numberFlag(text: string, flag: string, check: (n: number) => boolean, want: string): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || !check(n)) throw new UserError(`expected ${want}, got "${text}"`, { field: flag });
  return n;
}

/**
 * An integer flag's value (undefined when absent), or a UserError naming the flag. Integers past 2^53
 * are refused: they are not exact as numbers, so 99999999999999999999 must not pass as "an integer".
 */
export function intFlag(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const want = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min} (at most 2^53 - 1)` : `an integer from ${min} to ${max}`;
  return v === undefined ? undefined : numberFlag(v, name, (n) => Number.isSafeInteger(n) && n >= min && n <= max, want);
}

/**
 * The JSON values of a JSONL file given on the command line, with their 1-based lines and text (blank lines
 * skipped); an unreadable file or a line that is not JSON is a UserError at its file and line.
 */
export async function readJsonLines(file: string, field?: string): Promise<Array<{ line: number; raw: string; value: unknown }>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    throw new UserError(`cannot read (${(e as NodeJS.ErrnoException).code})`, { file, field });
  }
  const out: Array<{ line: number; raw: string; value: unknown }> = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    try {
      out.push({ line: i + 1, raw, value: JSON.parse(raw) });
    } catch (e) {
      throw new UserError(`not valid JSON (${(e as Error).message})`, { file, line: i + 1 });
    }
  });
  return out;
}
