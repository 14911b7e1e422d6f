// Worker threads on the project's own modules, whether running built JavaScript (dist/*.js) or the
// TypeScript sources (tests, `pnpm owntune`, benches), where the thread registers tsx's loader first.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * Starts a worker thread on the module `name` (no extension) next to `callerUrl` (the caller's
 * `import.meta.url`): `name.js` when the caller is built code, `name.ts` through tsx's `tsImport`
 * when the caller is itself a TypeScript source.
 */
export function startModuleWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  if (!callerUrl.endsWith(".ts")) return new Worker(new URL(`./${name}.js`, callerUrl), { workerData });
  const tsxApi = pathToFileURL(createRequire(callerUrl).resolve("tsx/esm/api").replace(/\.cjs$/, ".mjs")).href;
  const entry = new URL(`./${name}.ts`, callerUrl).href;
  const boot = `import(${JSON.stringify(tsxApi)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(callerUrl)}));`;
  return new Worker(boot, { eval: true, workerData, execArgv: ["--conditions=@owntune/source"] });
}
