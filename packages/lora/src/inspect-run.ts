// What `owntune inspect RUN_DIR` shows of a training run: its status and settings from run.json, the
// last losses from metrics.jsonl, each checkpoint with its files' sha256 checked, and the adapter.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isUserError, RUN_FORMAT } from "@owntune/core";
import { ADAPTER_DIR, METRICS_FILE, readJsonl, readRunRecord, RUN_FILE, type RunRecord } from "./run-dir.js";
import { checkCheckpoint, listCheckpoints } from "./train-checkpoint.js";

export interface RunInspection {
  record: RunRecord;
  lastTrain: Record<string, unknown> | undefined;
  lastEval: Record<string, unknown> | undefined;
  checkpoints: Array<{ step: number; dir: string; ok: boolean; problem?: string }>;
  adapter: boolean;
}

/** Whether `dir` holds an owntune training run (a run.json of that format). */
export function isRunDir(dir: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, RUN_FILE), "utf8")) as { format?: unknown }).format === RUN_FORMAT;
  } catch {
    return false;
  }
}

export async function inspectRun(dir: string): Promise<RunInspection> {
  const record = (await readRunRecord(dir))!;
  const metrics = await readJsonl(dir, METRICS_FILE);
  const checkpoints: RunInspection["checkpoints"] = [];
  for (const c of await listCheckpoints(dir)) {
    try {
      await checkCheckpoint(c.dir);
      checkpoints.push({ ...c, ok: true });
    } catch (e) {
      if (!isUserError(e)) throw e;
      checkpoints.push({ ...c, ok: false, problem: e.format() });
    }
  }
  return {
    record,
    lastTrain: metrics.filter((r) => r.type === "train").pop(),
    lastEval: metrics.filter((r) => r.type === "eval").pop(),
    checkpoints,
    adapter: existsSync(join(dir, ADAPTER_DIR, "adapter_model.safetensors")),
  };
}

export function formatRunInspection(dir: string, x: RunInspection): string[] {
  const r = x.record;
  const c = r.config as { lora?: { r?: number; alpha?: number }; optimizer?: { lr?: number }; batch_size?: number; grad_accum?: number };
  const num = (v: unknown, d = 4) => (typeof v === "number" ? v.toFixed(d) : "—");
  return [
    `${dir}: training run, ${r.status}${r.status_detail ? ` (${r.status_detail})` : ""}, step ${r.steps.done} of ${r.steps.total}`,
    `  model ${r.model_dir}, dataset ${r.data_dir}`,
    `  LoRA r=${c.lora?.r}, alpha ${c.lora?.alpha}, lr ${c.optimizer?.lr}, ${r.steps.rows_per_step} rows per step (batch_size ${c.batch_size} × grad_accum ${c.grad_accum}), seed ${r.seed}; ${r.plan.trainable_parameters.toLocaleString("en-US")} trainable parameters in ${r.plan.modules} modules`,
    `  last step: loss ${num(x.lastTrain?.loss)}, lr ${typeof x.lastTrain?.lr === "number" ? x.lastTrain.lr.toExponential(2) : "—"}; last eval: loss ${num(x.lastEval?.eval_loss)}, perplexity ${num(x.lastEval?.eval_perplexity, 2)}`,
    ...x.checkpoints.map((k) => `  checkpoint step ${k.step}: ${k.ok ? "intact (sha256 checked)" : `DAMAGED — ${k.problem}`}`),
    x.adapter
      ? `  adapter/: PEFT adapter of step ${r.adapter_step ?? r.steps.done}`
      : "  adapter/: not written yet (the run is not complete)",
  ];
}
