// What every command shares: the global flags, where human output and JSON results go, progress.
import { progressFor, UserError, type Progress } from "@owntune/model";
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

/** An integer flag's value (undefined when absent), or a UserError naming the flag. */
export function intFlag(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UserError(`expected an integer >= ${min}, got "${v}"`, { field: name });
  return n;
}
