// `owntune inspect PATH [--json]`: a summary of whatever PATH is, chosen by the inspectors below.
import { statSync } from "node:fs";
import { UserError } from "@owntune/core";
import type { Command } from "commander";
import { commandIO } from "../cli-io.js";
import { datasetDirInspector } from "../inspectors/dataset-dir.js";
import { exportDirInspector, ggufInspector } from "../inspectors/gguf.js";
import { modelDirInspector } from "../inspectors/model-dir.js";
import { runDirInspector } from "../inspectors/run-dir.js";
import { safetensorsInspector } from "../inspectors/safetensors.js";
import type { Inspection, Inspector } from "../inspectors/types.js";

/** Tried in order; the first that matches PATH inspects it. Add a kind of path with one line here. */
export const inspectors: Inspector[] = [
  modelDirInspector,
  safetensorsInspector,
  datasetDirInspector,
  runDirInspector,
  ggufInspector,
  exportDirInspector,
];

/** The summary of `path` by the first inspector that matches it. */
export async function inspectPath(path: string): Promise<Inspection> {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new UserError("no such file or directory", { file: path });
  }
  const inspector = inspectors.find((i) => i.matches(path, stat));
  if (!inspector) {
    const what = stat.isDirectory()
      ? "a folder with none of config.json + model.safetensors (model), manifest.json (dataset), model-*.gguf (export)"
      : "a file that is not .safetensors or .gguf";
    throw new UserError(`owntune cannot inspect this: ${what} (it knows: ${inspectors.map((i) => i.kind).join(", ")})`, { file: path });
  }
  return inspector.inspect(path);
}

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description(`summarise a path: ${inspectors.map((i) => i.kind).join(", ")}`)
    .argument("<path>", "what to inspect")
    .action(async (path: string, _opts: unknown, cmd: Command) => {
      const io = commandIO(cmd);
      const r = await inspectPath(path);
      io.result({ kind: r.kind, ...r.data }, r.lines.join("\n"));
    });
}
