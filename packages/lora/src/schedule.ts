// Learning-rate schedules: a linear warmup, then constant, linear decay or cosine decay over the
// remaining steps, as transformers' get_{constant,linear,cosine}_schedule_with_warmup shape them.
// Steps are 1-based optimizer steps. Unlike transformers (whose first warmup step uses lr·0), warmup
// step k uses lr·k/W, so no step is spent with a zero learning rate.
import type { TrainConfig } from "./train-config.js";

export type ScheduleConfig = TrainConfig["schedule"];

/** The learning rate of optimizer step `step` (1 … total) for peak `lr`. */
export function learningRate(schedule: ScheduleConfig, lr: number, step: number, total: number): number {
  const W = schedule.warmup_steps;
  if (step <= W) return (lr * step) / W;
  if (schedule.kind === "constant") return lr;
  // Progress after the warmup: 0 at the first step after it, (n−1)/n at the last of n steps.
  const p = (step - 1 - W) / Math.max(1, total - W);
  if (schedule.kind === "linear") return lr * Math.max(0, 1 - p);
  const m = schedule.min_lr_ratio;
  return lr * (m + (1 - m) * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, p))));
}
