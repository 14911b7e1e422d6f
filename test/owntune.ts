// Runs the `owntune` CLI as a child process from its TypeScript source, as `pnpm owntune` does.
import { spawn, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository root. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsxLoader = pathToFileURL(createRequire(join(repoRoot, "package.json")).resolve("tsx")).href;
const mainTs = join(repoRoot, "packages/cli/src/main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Node's arguments that run `owntune ...args` from source (for spawning it by hand). */
export function argvFor(args: readonly string[]): string[] {
  return ["--conditions=@owntune/source", "--import", tsxLoader, mainTs, ...args];
}

/** Runs `owntune ...args` in `cwd` (default: the repository root) and waits for it. */
export function owntune(args: readonly string[], cwd = repoRoot, env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, argvFor(args), {
    cwd,
    encoding: "utf8",
    env: { ...process.env, FORCE_COLOR: "0", ...env },
    timeout: 600_000,
    maxBuffer: 256 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Same, without blocking the test process (for long runs alongside other work). With `timeoutMs`, a
 * command still running then is killed and reported as code -1 with "(timed out)" on stderr: a hang
 * fails its test instead of the whole suite.
 */
export function owntuneAsync(args: readonly string[], cwd = repoRoot, env: NodeJS.ProcessEnv = {}, timeoutMs?: number): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, argvFor(args), { cwd, env: { ...process.env, FORCE_COLOR: "0", ...env } });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), child.kill("SIGKILL")), timeoutMs);
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code: timedOut ? -1 : (code ?? -1), stdout, stderr: timedOut ? `${stderr}(timed out)` : stderr });
    });
  });
}

/**
 * config.json of a toy body on the real vocabulary (so the default tokenizer fits), fast to write:
 * 2 layers, sliding and full, GQA, different head dims per layer type.
 */
export const TOY_MODEL_CONFIG = {
  model_type: "gemma4_text",
  vocab_size: 262144,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  global_head_dim: 16,
  layer_types: ["sliding_attention", "full_attention"],
  sliding_window: 4,
};
