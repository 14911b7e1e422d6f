// The static import graph of a workspace module, as the TypeScript sources resolve it: relative imports
// ("./x.js" → x.ts) and @owntune/* packages (their "@owntune/source" export) are followed; any other
// package is recorded by name and not entered. Static and dynamic `import("…")` with a literal both count,
// since either can load a module into the thread. For questions such as "does curate's worker thread
// load TensorFlow.js?" (test/curate-worker-imports.test.ts, bench/curate-worker.bench.ts).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export interface ImportGraph {
  /** Workspace files reached, relative to the workspace root, in the order first reached. */
  files: string[];
  /** Packages outside the workspace imported, with the first file that imports each. */
  external: Map<string, string>;
  /** For each file reached, the file that first imported it (the entry has none). */
  parent: Map<string, string>;
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s+(type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

/** Walks every module `entry` (a file under `root`) loads; type-only imports load nothing and are skipped. */
export function importGraph(root: string, entry: string): ImportGraph {
  const graph: ImportGraph = { files: [], external: new Map(), parent: new Map() };
  const seen = new Set<string>();
  const visit = (file: string, from: string | undefined): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const rel = relative(root, file);
    graph.files.push(rel);
    if (from) graph.parent.set(rel, from);
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(IMPORT)) {
      if (m[1]) continue; // `import type …`: erased
      const spec = (m[2] ?? m[3])!;
      const target = resolveSpecifier(root, file, spec);
      if (target) visit(target, rel);
      else if (!spec.startsWith("node:") && !graph.external.has(packageName(spec))) graph.external.set(packageName(spec), rel);
    }
  };
  visit(resolve(root, entry), undefined);
  return graph;
}

/** The chain of files from the entry to `file` (e.g. to say how TensorFlow.js got in). */
export function importChain(graph: ImportGraph, file: string): string[] {
  const chain = [file];
  for (let f = graph.parent.get(file); f; f = graph.parent.get(f)) chain.unshift(f);
  return chain;
}

function packageName(spec: string): string {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
}

function resolveSpecifier(root: string, from: string, spec: string): string | undefined {
  if (spec.startsWith(".")) {
    const base = resolve(dirname(from), spec);
    for (const f of [base.replace(/\.js$/, ".ts"), base.replace(/\.mjs$/, ".mts"), base, `${base}.ts`, join(base, "index.ts")])
      if (existsSync(f) && !f.endsWith("/")) return f;
    return undefined;
  }
  if (!spec.startsWith("@owntune/")) return undefined;
  const [, name, ...sub] = spec.split("/");
  const pkgDir = join(root, "packages", name!);
  const manifest = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8")) as { exports: Record<string, Record<string, string>> };
  const target = manifest.exports[sub.length ? `./${sub.join("/")}` : "."]?.["@owntune/source"];
  return target ? join(pkgDir, target) : undefined;
}
