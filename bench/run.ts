// `pnpm bench [name...]`: runs every bench/*.bench.ts (or the named ones) one after another.
// Each bench module's default export is an async function that checks its results, then times them,
// and prints ratios measured side by side in the same run. Figures go into BENCHMARKS.md.
import { readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => wanted.length === 0 || wanted.includes(basename(f, ".bench.ts")))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(", ") || "bench/*.bench.ts"}`);
  process.exit(2);
}
for (const f of files) {
  console.log(`\n=== ${basename(f, ".bench.ts")} (${new Date().toISOString()}, node ${process.version})`);
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { default: () => Promise<void> };
  await mod.default();
}
