// The LoRA training loop, top to bottom like nanoGPT's train.py: for each optimizer step take the next
// batch_size × grad_accum rows, run the micro-batches forward and backward (gradients for the adapter
// only; the base is frozen and never copied), form the step's loss as Σ NLL over every loss-bearing
// target of all its micro-batches ÷ their count, clip the global gradient norm, take an AdamW step at
// the scheduled learning rate, log, and evaluate / checkpoint on schedule. Setup and the final outputs
// live in fine-tune.ts.
import * as tf from "@tensorflow/tfjs";
import type { GemmaTokenizer } from "@owntune/tokenizer";
import { RunFailure, type Progress } from "@owntune/core";
import { lmLoss, type Gemma4Model } from "@owntune/model";
import type { CuratedDataset, DataPosition } from "@owntune/curate";
import { AdamW, clipGradients, globalNorm } from "./adamw.js";
import { evaluate, sampleCompletions, type EvalResult, type Sample } from "./evaluate.js";
import type { DropoutContext, LoraState } from "./lora-state.js";
import type { PlannedModule } from "./targets.js";
import { appendJsonl, METRICS_FILE, SAMPLES_FILE, type MetricsRow } from "./run-dir.js";
import { learningRate } from "./schedule.js";
import { saveCheckpoint, type TrainerState } from "./train-checkpoint.js";
import type { TrainConfig } from "./train-config.js";
import { microBatches, RowStream, type MicroBatch } from "./train-data.js";
import type { AdapterWeights } from "./adapter.js";
import type { WritePeftOptions } from "./peft.js";

/** Where a run stands between steps: everything a checkpoint must hold besides the weights. */
export interface TrainProgress {
  step: number;
  data: DataPosition;
  best: { eval_loss: number; step: number } | null;
  bestWeights: AdapterWeights | undefined;
  evalsWithoutImprovement: number;
  tokensSeen: number;
  trainedTokensSeen: number;
  elapsedSeconds: number;
}

/** A run before its first step. */
export function freshProgress(): TrainProgress {
  return {
    step: 0,
    data: { epoch: 0, offset: 0 },
    best: null,
    bestWeights: undefined,
    evalsWithoutImprovement: 0,
    tokensSeen: 0,
    trainedTokensSeen: 0,
    elapsedSeconds: 0,
  };
}

export interface TrainRun {
  runDir: string;
  model: Gemma4Model;
  tokenizer: GemmaTokenizer;
  dataset: CuratedDataset;
  config: TrainConfig;
  seed: number;
  lora: LoraState;
  optimizer: AdamW;
  totalSteps: number;
  /** Rows the whole run reads when it is given in epochs (the last step may hold fewer); undefined for steps. */
  totalRows: number | undefined;
  start: TrainProgress;
  /** Written into every checkpoint. */
  configDigest: string;
  peft: WritePeftOptions;
  signal?: AbortSignal;
  progress: Progress;
  log(line: string): void;
  /** Called after every step's metrics row (for run.json's step count). */
  onStep?(p: TrainProgress): Promise<void>;
}

export interface TrainOutcome {
  /** How the loop ended. */
  end: "done" | "early-stopped" | "interrupted";
  progress: TrainProgress;
  lastLoss: number | null;
  lastEval: EvalResult | undefined;
  samples: Sample[];
  tokensPerSecond: number;
}

export async function train(run: TrainRun): Promise<TrainOutcome> {
  const { model, config, lora, optimizer } = run;
  const B = config.batch_size;
  const rowsPerStep = B * config.grad_accum;
  const grads = lora.params.map((p) => new Float32Array(p.length));
  const p: TrainProgress = { ...run.start };
  const stream = new RowStream(run.dataset, "train", { seed: run.seed, start: p.data });
  const started = performance.now() - p.elapsedSeconds * 1000;
  const elapsed = () => (performance.now() - started) / 1000;
  let lastLoss: number | null = null;
  let lastEval: EvalResult | undefined;
  let samples: Sample[] = [];
  let end: TrainOutcome["end"] = "done";
  let windowTokens = 0;
  let windowSeconds = 0;

  const checkpoint = async () => {
    const dir = await saveCheckpoint(run.runDir, checkpointInput(run, p), config.keep_checkpoints);
    run.log(`checkpoint: ${dir}`);
  };

  run.progress.start(run.totalSteps * rowsPerStep * run.dataset.seqLen, "training", "tok");
  run.progress.update(p.step * rowsPerStep * run.dataset.seqLen);
  try {
    for (let step = p.step + 1; step <= run.totalSteps; step++) {
      const t0 = performance.now();
      // 1. The step's rows: the next rows of the seeded stream, as micro-batches of B.
      const dataAtStart = stream.next;
      const want = run.totalRows === undefined ? rowsPerStep : Math.min(rowsPerStep, run.totalRows - (step - 1) * rowsPerStep);
      const micro = microBatches(await stream.take(want), B);
      const targets = micro.reduce((n, mb) => n + mb.targets, 0); // the step's loss-bearing targets, all micro-batches
      const lr = learningRate(config.schedule, config.optimizer.lr, step, run.totalSteps);

      // 2. Forward and backward per micro-batch: d(Σ NLL_mb / targets)/dθ, summed over micro-batches.
      for (const g of grads) g.fill(0);
      let loss = 0;
      for (const [i, mb] of micro.entries()) {
        if (run.signal?.aborted) {
          // Nothing of this step is applied: the checkpoint is the state after step − 1.
          p.data = dataAtStart;
          await checkpoint();
          end = "interrupted";
          return finish();
        }
        loss += accumulateGradients(model, lora, mb, targets, grads, { seed: run.seed, p: config.lora.dropout, step, micro: i });
        await new Promise((r) => setImmediate(r)); // lets a Ctrl-C in between micro-batches
      }
      const tokens = micro.reduce((n, mb) => n + mb.rows * mb.length, 0);

      // 3. Norm, a non-finite guard before anything changes, clipping, the AdamW update.
      const gradNorm = globalNorm(grads);
      if (targets > 0 && (!Number.isFinite(loss) || !Number.isFinite(gradNorm))) {
        const what = !Number.isFinite(loss) ? `the loss is ${loss}` : `the gradient norm is ${gradNorm}`;
        throw new RunFailure(
          `step ${step}: ${what}; the update was not applied and the last checkpoint is intact (lower optimizer.lr or max_grad_norm, or check the data)`,
        );
      }
      if (targets > 0) {
        clipGradients(grads, gradNorm, config.max_grad_norm);
        optimizer.update(lora.params, grads, lr);
        lora.sync();
      }
      p.step = step;
      p.data = stream.next;
      p.tokensSeen += tokens;
      p.trainedTokensSeen += targets;
      p.elapsedSeconds = elapsed();
      lastLoss = targets > 0 ? loss : null;

      // 4. Log.
      const seconds = (performance.now() - t0) / 1000;
      windowTokens += tokens;
      windowSeconds += seconds;
      const row: MetricsRow = {
        type: "train",
        step,
        loss: lastLoss,
        lr,
        grad_norm: gradNorm,
        tokens,
        trained_tokens: targets,
        tokens_per_s: tokens / seconds,
        elapsed_s: Number(p.elapsedSeconds.toFixed(3)),
        epoch: Number((p.data.epoch + p.data.offset / Math.max(1, run.dataset.rows("train"))).toFixed(4)),
      };
      await appendJsonl(run.runDir, METRICS_FILE, [row]);
      run.progress.increment(rowsPerStep * run.dataset.seqLen);
      run.progress.note?.(`step ${step}/${run.totalSteps} loss ${lastLoss?.toFixed(4) ?? "-"}`);
      if (step % config.log_every === 0 || step === run.totalSteps) {
        run.log(
          `step ${step}/${run.totalSteps}  loss ${lastLoss?.toFixed(4) ?? "-"}  lr ${lr.toExponential(2)}  grad_norm ${gradNorm.toFixed(3)}  ${(windowTokens / windowSeconds).toFixed(0)} tok/s`,
        );
        windowTokens = 0;
        windowSeconds = 0;
      }

      // 5. Evaluate on schedule and at the end: keep-best and early stopping follow the eval loss.
      let stopEarly = false;
      if ((config.eval_every > 0 && step % config.eval_every === 0) || step === run.totalSteps) {
        const layers = lora.layers();
        lastEval = await evaluate(model, layers, run.dataset, B, config.eval_rows);
        if (lastEval) {
          await appendJsonl(run.runDir, METRICS_FILE, [
            {
              type: "eval",
              step,
              eval_loss: lastEval.loss,
              eval_perplexity: lastEval.perplexity,
              eval_tokens: lastEval.tokens,
              eval_rows: lastEval.rows,
            },
          ]);
          run.log(
            `eval at step ${step}: loss ${lastEval.loss.toFixed(4)}, perplexity ${lastEval.perplexity.toFixed(2)} (${lastEval.tokens} tokens)`,
          );
          const d = evalDecision(p, lastEval.loss, config.early_stopping);
          if (d.best) {
            p.best = { eval_loss: lastEval.loss, step };
            if (config.keep_best) p.bestWeights = lora.snapshot();
          }
          p.evalsWithoutImprovement = d.evalsWithoutImprovement;
          stopEarly = d.stop;
        }
        if (config.samples) {
          samples = await sampleCompletions(model, layers, run.tokenizer, config.samples.prompts, {
            maxTokens: config.samples.max_tokens,
            chat: config.samples.chat,
          });
          await appendJsonl(
            run.runDir,
            SAMPLES_FILE,
            samples.map((s) => ({ step, prompt: s.prompt, completion: s.completion })),
          );
        }
      }
      await run.onStep?.(p);

      // 6. Checkpoint on schedule, and when asked to stop.
      const last = step === run.totalSteps || stopEarly;
      if (run.signal?.aborted && !last) {
        await checkpoint();
        end = "interrupted";
        return finish();
      }
      if (config.save_every > 0 && step % config.save_every === 0 && !last) await checkpoint();
      if (stopEarly) {
        run.log(
          `early stopping at step ${step}: no improvement of the eval loss for ${p.evalsWithoutImprovement} evaluations (best ${p.best!.eval_loss.toFixed(4)} at step ${p.best!.step})`,
        );
        end = "early-stopped";
        break;
      }
    }
    return finish();
  } finally {
    run.progress.stop();
    await stream.close();
  }

  function finish(): TrainOutcome {
    return { end, progress: p, lastLoss, lastEval, samples, tokensPerSecond: p.tokensSeen / Math.max(p.elapsedSeconds, 1e-9) };
  }
}

/**
 * One micro-batch's forward and backward: adds d(Σ NLL of its targets / `stepTargets`)/dθ to `grads`
 * (in LoraState.params order) and returns its share of the step's loss. With every micro-batch of a
 * step divided by the step's whole target count, k micro-batches sum to exactly the loss and gradient
 * of one batch k times larger (up to float summation order).
 */
export function accumulateGradients(
  model: Gemma4Model,
  lora: LoraState,
  mb: MicroBatch,
  stepTargets: number,
  grads: readonly Float32Array[],
  dropout?: DropoutContext,
): number {
  if (mb.targets === 0) return 0;
  const vars = lora.variables;
  const layers = lora.layers(dropout);
  const { value, grads: g } = tf.variableGrads(
    () => tf.mul(lmLoss(model, mb.batch, { lora: layers, reduction: "sum" }), 1 / stepTargets) as tf.Scalar,
    [...vars],
  );
  const loss = value.dataSync()[0]!;
  vars.forEach((v, k) => {
    const gk = g[v.name];
    if (!gk) return; // a module this micro-batch did not reach: zero
    const data = gk.dataSync() as Float32Array;
    const acc = grads[k]!;
    for (let j = 0; j < acc.length; j++) acc[j]! += data[j]!;
  });
  tf.dispose([value, ...Object.values(g)]);
  return loss;
}

/**
 * What an evaluation decides: whether `loss` is the best so far (keep_best: strictly lower), and, for
 * early stopping, how many evaluations in a row have not improved on the best by more than min_delta.
 */
export function evalDecision(
  p: Pick<TrainProgress, "best" | "evalsWithoutImprovement">,
  loss: number,
  early: { patience: number; min_delta: number } | undefined,
): { best: boolean; evalsWithoutImprovement: number; stop: boolean } {
  const best = p.best === null || loss < p.best.eval_loss;
  const improved = p.best === null || loss < p.best.eval_loss - (early?.min_delta ?? 0);
  const evalsWithoutImprovement = improved ? 0 : p.evalsWithoutImprovement + 1;
  return { best, evalsWithoutImprovement, stop: early !== undefined && evalsWithoutImprovement >= early.patience };
}

/** Parameter names in trainer order: `<module>.lora_A`, `<module>.lora_B`, … */
export function paramNames(modules: readonly PlannedModule[]): string[] {
  return modules.flatMap((m) => [`${m.name}.lora_A`, `${m.name}.lora_B`]);
}

function checkpointInput(run: TrainRun, p: TrainProgress) {
  const { lora, optimizer, config } = run;
  const state: Omit<TrainerState, "format" | "format_version" | "files"> = {
    step: p.step,
    total_steps: run.totalSteps,
    data: p.data,
    rng: { kind: "counter", seed: run.seed },
    schedule: {
      kind: config.schedule.kind,
      lr: p.step > 0 ? learningRate(config.schedule, config.optimizer.lr, p.step, run.totalSteps) : 0,
    },
    optimizer: { kind: "adamw", step: optimizer.step },
    best: p.best,
    evals_without_improvement: p.evalsWithoutImprovement,
    tokens_seen: p.tokensSeen,
    trained_tokens_seen: p.trainedTokensSeen,
    elapsed_s: p.elapsedSeconds,
    config_digest: run.configDigest,
  };
  return {
    state,
    adapter: lora.snapshot(),
    peft: run.peft,
    paramNames: paramNames(lora.modules),
    paramShapes: lora.modules.flatMap((m) => [
      [lora.rank, m.inFeatures],
      [m.outFeatures, lora.rank],
    ]),
    optimizer,
    best: p.bestWeights,
  };
}
