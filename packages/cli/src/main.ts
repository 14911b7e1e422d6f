#!/usr/bin/env node
// The `owntune` command: commander wiring and the exit-code convention only.
// 0 success, 2 bad usage / config / input (one located line), 1 anything else (stack with --debug).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { isRunFailure, isUserError, removePendingTemps } from "@owntune/core";
import { Command, CommanderError } from "commander";
import { registerCurate } from "./commands/curate.js";
import { deliverInterrupt } from "./interrupt.js";
import { registerExport } from "./commands/export.js";
import { registerGenerate } from "./commands/generate.js";
import { registerInitModel } from "./commands/init-model.js";
import { registerInspect } from "./commands/inspect.js";
import { registerRun } from "./commands/run.js";
import { registerSchema } from "./commands/schema.js";
import { registerScore } from "./commands/score.js";
import { registerTrain } from "./commands/train.js";
import { registerVerify } from "./commands/verify.js";

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Each command file adds itself to the program. */
const commands: Array<(program: Command) => void> = [
  registerRun,
  registerSchema,
  registerInitModel,
  registerInspect,
  registerCurate,
  registerTrain,
  registerScore,
  registerGenerate,
  registerExport,
  registerVerify,
];

export function buildProgram(): Command {
  const program = new Command("owntune")
    .description("Curate data, LoRA-fine-tune Gemma 4 on your own hardware, export GGUF for llama.cpp.")
    .option("--json", "print results as JSON (no progress bars)")
    .option("--debug", "print stack traces for internal errors")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  for (const register of commands) register(program);
  for (const sub of program.commands) sub.exitOverride();
  return program;
}

/** Runs the CLI on `argv` (without node and script) and returns the exit code; never exits itself. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes("--debug");
  try {
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version are "errors" to commander; everything else it throws is bad usage.
      if (e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version") {
        return EXIT_OK;
      }
      return EXIT_USAGE; // commander already printed the message
    }
    if (isUserError(e)) {
      // A config with several problems gives one located line each.
      for (const line of e.format().split("\n")) process.stderr.write(`error: ${line}\n`);
      if (debug && e.stack) process.stderr.write(e.stack + "\n");
      return EXIT_USAGE;
    }
    if (isRunFailure(e)) {
      // An expected failure (verify outside tolerance, a training run stopped): one line, not a bug.
      process.stderr.write(`error: ${e.format()}\n`);
      if (debug && e.stack) process.stderr.write(e.stack + "\n");
      return EXIT_FAILURE;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    if (typeof (err as NodeJS.ErrnoException).syscall === "string") {
      // The system refused (disk full, permissions, a path that is a file): a failure, not a bug.
      process.stderr.write(`error: ${err.message}\n`);
      if (debug) process.stderr.write(`${err.stack}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(`internal error: ${err.message}\n`);
    process.stderr.write(debug ? `${err.stack}\n` : "(run with --debug for the stack trace; this is a bug in owntune)\n");
    return EXIT_FAILURE;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const onSignal = (signal: NodeJS.Signals) => {
    if (deliverInterrupt(signal)) {
      process.once(signal, onSignal); // a second one stops at once
      return;
    }
    removePendingTemps();
    process.stderr.write(`\ninterrupted (${signal}); no partial file was left under a final name\n`);
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const code = await main(process.argv.slice(2));
  if (code !== EXIT_OK || process.exitCode === undefined) process.exitCode = code; // a command may have set its own (1: verify failed, 130: interrupted)
}
