// `owntune inspect RUN_DIR`: a training run (run.json): status, settings, last losses, each
// checkpoint checked against its sha256s, and whether the adapter is there.
import { formatRunInspection, inspectRun, isRunDir } from "@owntune/lora";
import type { Inspector } from "./types.js";

export const runDirInspector: Inspector = {
  kind: "training run directory",
  matches: (path, stat) => stat.isDirectory() && isRunDir(path),
  async inspect(dir) {
    const x = await inspectRun(dir);
    return {
      kind: "training run directory",
      data: {
        status: x.record.status,
        steps: x.record.steps,
        config: x.record.config,
        final: x.record.final ?? null,
        last_train: x.lastTrain ?? null,
        last_eval: x.lastEval ?? null,
        checkpoints: x.checkpoints,
        adapter: x.adapter,
      },
      lines: formatRunInspection(dir, x),
    };
  },
};
