// One LoRA fine-tuning run, as `owntune train` and the recipe's `train:` stage run it: set up (check the
// model, dataset and run directory; plan the adapter; estimate memory; restore a checkpoint), run the
// loop (train.ts), and write the outputs: adapter/ (PEFT), run.json, metrics.jsonl, report.html.
// Reference: design.md "Files" (run directory), STYLE.md "Training".
import { mkdir, readdir, readFile, rm, stat } from "node:fs/promises";
import { totalmem } from "node:os";
import { join, relative, resolve } from "node:path";
import {
  formatBytes,
  isUserError,
  removeStaleTemps,
  RUN_FORMAT,
  RunFailure,
  silentProgress,
  UserError,
  type Progress,
} from "@owntune/core";
import {
  countParameters,
  describeBackend,
  describeStorage,
  initBackend,
  loadGemma4,
  loadModelDir,
  planStorage,
  selectKernels,
  type BaseDtype,
  type KernelName,
} from "@owntune/model";
import { CuratedDataset } from "@owntune/curate";
import { AdamW } from "./adamw.js";
import { LoraState, loraScaling } from "./lora-state.js";
import { availableMemory, estimateTraining, WASM_HEAP_LIMIT_BYTES } from "./memory.js";
import { writePeftAdapter, type WritePeftOptions } from "./peft.js";
import { writeTrainReport } from "./train-report.js";
import {
  ADAPTER_DIR,
  fileFingerprint,
  firstDifference,
  LOCK_FILE,
  lockRunDir,
  METRICS_FILE,
  readJsonl,
  readRunRecord,
  REPORT_FILE,
  RUN_FILE,
  RUN_FORMAT_VERSION,
  SAMPLES_FILE,
  sha256Text,
  truncateJsonl,
  writeRunRecord,
  type RunIdentity,
  type RunRecord,
} from "./run-dir.js";
import { describeSkipped, formatLayers, planLora } from "./targets.js";
import { CHECKPOINTS_DIR, listCheckpoints, loadCheckpoint, type LoadedCheckpoint } from "./train-checkpoint.js";
import { resumeFreeFields, type TrainConfig } from "./train-config.js";
import { freshProgress, paramNames, train, type TrainProgress } from "./train.js";

export interface FineTuneOptions {
  modelDir: string;
  dataDir: string;
  outDir: string;
  config: TrainConfig;
  /** Where the training config came from (train.yaml, the recipe), for located errors. */
  configFile?: string;
  /** Prefix of the config's fields in that file (`train` in a recipe). */
  fieldPrefix?: string;
  /** Seed when the config has none (the recipe's). */
  defaultSeed?: number;
  /** Continue from the newest complete checkpoint of `outDir`. */
  resume?: boolean;
  /** Replace an owntune run already in `outDir` (never anything else). */
  force?: boolean;
  /** Aborting stops the run at the next micro-batch boundary with a checkpoint. */
  signal?: AbortSignal;
  backend?: string;
  /** Kernels for the frozen base: native (ggml), tfjs, or auto (native when ggml loads). */
  kernels?: KernelName | "auto";
  /** How the frozen base is held: f32, bf16, q8_0, q4_0, q4_k (QLoRA-style), or auto. */
  baseDtype?: BaseDtype | "auto";
  progress?: Progress;
  log?: (line: string) => void;
}

export interface FineTuneResult {
  outDir: string;
  adapterDir: string;
  /** complete: trained now; reused: an identical complete run was already there; interrupted: stopped with a checkpoint. */
  status: "complete" | "reused" | "interrupted";
  steps: number;
  totalSteps: number;
  loss: number | null;
  evalLoss: number | null;
  evalPerplexity: number | null;
  tokensPerSecond: number;
  seconds: number;
}

/** Files and folders an owntune run directory holds (what --force removes). */
const RUN_ENTRIES = [RUN_FILE, METRICS_FILE, SAMPLES_FILE, REPORT_FILE, ADAPTER_DIR, CHECKPOINTS_DIR];

export async function fineTune(o: FineTuneOptions): Promise<FineTuneResult> {
  const log = o.log ?? (() => {});
  const progress = o.progress ?? silentProgress;
  const c = o.config;
  const field = (f: string) => (o.fieldPrefix ? `${o.fieldPrefix}.${f}` : f);
  const outDir = resolve(o.outDir);

  // --- Inputs: the model folder (config, tokenizer, weights' headers) and the dataset. ---------------
  const modelDir = await loadModelDir(o.modelDir);
  const checkpoint = modelDir.checkpoint;
  let closed = false;
  const closeCheckpoint = async () => {
    if (!closed) await checkpoint.close();
    closed = true;
  };
  try {
    for (const w of modelDir.warnings) log(`warning: ${w}`);
    const dataset = await CuratedDataset.open(o.dataDir);
    const m = dataset.manifest;
    const manifestFile = join(o.dataDir, "manifest.json");
    const tok = modelDir.tokenizer.identity;
    if (m.tokenizer.sha256 !== tok.sha256) {
      throw new UserError(
        `the dataset was curated with another tokenizer (${describeTokenizer(m.tokenizer.source, m.tokenizer.sha256)}) than the model's (${describeTokenizer(tok.source, tok.sha256)} in ${modelDir.dir})`,
        {
          file: manifestFile,
          field: "tokenizer",
          hint: `curate again with this model's tokenizer (owntune curate … --model ${o.modelDir})`,
        },
      );
    }
    const context = modelDir.config.max_position_embeddings;
    if (dataset.seqLen > context) {
      throw new UserError(
        `rows hold ${dataset.seqLen} tokens (seq_len), longer than the model's context of ${context} tokens (max_position_embeddings)`,
        {
          file: manifestFile,
          field: "seq_len",
          hint: `curate again with seq_len ≤ ${context}`,
        },
      );
    }
    const trainRows = dataset.rows("train");
    if (trainRows === 0)
      throw new UserError("the dataset has no train rows", {
        file: manifestFile,
        hint: "see its report.html for what the filters dropped",
      });

    // --- The adapter's plan and the run's length. ----------------------------------------------------
    const plan = planLora(modelDir.config, c.lora, { file: o.configFile, fieldPrefix: o.fieldPrefix });
    const seed = c.seed ?? o.defaultSeed ?? 0;
    const rowsPerStep = c.batch_size * c.grad_accum;
    const totalRows = c.steps === undefined ? Math.max(1, Math.round((c.epochs ?? 1) * trainRows)) : undefined;
    const totalSteps = c.steps ?? Math.ceil(totalRows! / rowsPerStep);
    const scale = loraScaling(c.lora.r, c.lora.alpha, c.lora.rslora);

    // --- Backend and memory: refuse a run that cannot fit, before loading anything big. -----------
    const backend = await initBackend({ backend: o.backend });
    const storage = planStorage(
      modelDir.config,
      checkpoint,
      { baseDtype: o.baseDtype },
      totalmem(),
      selectKernels(o.kernels, "--kernels").info,
    );
    const { trainable, recompute, estimate: est } = estimateTraining(modelDir.config, plan, c, dataset.seqLen, storage, backend.name);
    const avail = availableMemory();
    const biggest =
      est.activations >= est.base
        ? `batch_size (activations: ${formatBytes(est.activations, "GiB")} for ${c.batch_size} × ${dataset.seqLen} tokens) or the dataset's seq_len`
        : `the base model's size (weights: ${formatBytes(est.base, "GiB")}; a compact base_dtype such as q4_0 holds them in about a seventh of float32)`;
    if (est.total > avail.bytes) {
      throw new UserError(
        `estimated peak memory ${formatBytes(est.total, "GiB")} exceeds ${avail.source} (${formatBytes(avail.bytes, "GiB")}); lower ${biggest}`,
        { file: o.configFile, field: field("batch_size") },
      );
    }
    if (backend.name === "wasm" && est.backend > WASM_HEAP_LIMIT_BYTES) {
      throw new UserError(
        `the wasm backend holds at most 4 GiB of tensors and this run needs an estimated ${formatBytes(est.backend, "GiB")} there; lower ${biggest}`,
        { file: o.configFile, field: field("batch_size") },
      );
    }

    // --- The run directory: a fresh one, the same run to resume, or a refusal. -----------------------
    const identity: RunIdentity = {
      model: {
        config_sha256: sha256Text(await readFile(join(modelDir.dir, "config.json"))),
        tokenizer_sha256: tok.sha256,
        weights: await Promise.all(checkpoint.files.map(async (f) => ({ file: relative(modelDir.dir, f), ...(await fileFingerprint(f)) }))),
      },
      dataset: { manifest_sha256: sha256Text(await readFile(manifestFile)), rows: trainRows, seq_len: dataset.seqLen },
      // Native and tfjs kernels, and each base dtype, round differently: a resume must use the same.
      runtime: { kernels: storage.kernels.name, base_dtype: storage.baseDtype },
    };
    const resolvedConfig = { ...c, seed } as Record<string, unknown>;
    const free = resumeFreeFields(c);
    const configDigest = sha256Text(JSON.stringify({ config: stripFree(resolvedConfig, free), identity }));
    const existing = await prepareRunDir(outDir, {
      config: resolvedConfig,
      identity,
      free,
      resume: o.resume === true,
      force: o.force === true,
      field,
      log,
    });
    if (existing === "complete") {
      const rec = (await readRunRecord(outDir))!;
      log(`train: ${outDir} already holds this run, complete (${rec.steps.done} steps); reusing its adapter (--force trains again)`);
      return {
        outDir,
        adapterDir: join(outDir, ADAPTER_DIR),
        status: "reused",
        steps: rec.steps.done,
        totalSteps: rec.steps.total,
        loss: rec.final?.loss ?? null,
        evalLoss: rec.final?.eval_loss ?? null,
        evalPerplexity: rec.final?.eval_perplexity ?? null,
        tokensPerSecond: rec.final?.tokens_per_s ?? 0,
        seconds: 0,
      };
    }
    await mkdir(outDir, { recursive: true });
    const release = lockRunDir(outDir);
    try {
      for (const dir of [outDir, join(outDir, CHECKPOINTS_DIR)]) {
        const removed = await removeStaleTemps(dir);
        if (removed.length > 0) log(`removed ${removed.length} stale temporary file(s) left by an interrupted run in ${dir}`);
      }
      const names = paramNames(plan.modules);
      let restored: LoadedCheckpoint | undefined;
      if (o.resume) {
        restored = await newestCheckpoint(outDir, modelDir.config, names, configDigest, log);
        log(
          restored
            ? `resuming from ${restored.dir} (step ${restored.state.step} of ${totalSteps})`
            : `no complete checkpoint in ${outDir} yet: starting from step 0`,
        );
      }

      // --- Banner. ---------------------------------------------------------------------------------
      const total = countParameters(modelDir.config).total;
      const targetsPerStep = Math.round((m.splits.train.trained_tokens / trainRows) * rowsPerStep);
      const banner = [
        `train: ${modelDir.dir} on ${o.dataDir} (${trainRows} train rows × ${dataset.seqLen} tokens) → ${outDir}`,
        `  adapter: r=${c.lora.r}, alpha ${c.lora.alpha} (scale ${fmtNum(scale)}${c.lora.rslora ? ", rsLoRA" : ""}), dropout ${c.lora.dropout}; ${plan.modules.length} modules (${[...new Set(plan.modules.map((x) => x.target))].join(", ")}) on layers ${formatLayers(plan.layers)}`,
        `  trainable parameters: ${trainable.toLocaleString("en-US")} of ${(total + trainable).toLocaleString("en-US")} (${((100 * trainable) / (total + trainable)).toFixed(3)}%)`,
        ...describeSkipped(plan.skipped).map((s) => `  targets skipped: ${s}`),
        `  steps: ${totalSteps} × ${rowsPerStep} rows (batch_size ${c.batch_size} × grad_accum ${c.grad_accum}) = ${(rowsPerStep * dataset.seqLen).toLocaleString("en-US")} tokens per step, ~${targetsPerStep.toLocaleString("en-US")} trained; ${((totalSteps * rowsPerStep) / trainRows).toFixed(2)} epochs; seed ${seed}`,
        `  backend: ${describeBackend(backend)}; kernels: ${describeStorage(storage)}${recompute ? "; each layer recomputed in the backward pass" : ""}`,
        `  memory estimate: ${formatBytes(est.total, "GiB")} peak (weights ${formatBytes(est.base, "GiB")}, activations ${formatBytes(est.activations, "GiB")}, adapter + AdamW ${formatBytes(est.lora, "GiB")}) of ${formatBytes(avail.bytes, "GiB")}`,
      ];
      for (const line of banner) log(line);

      // run.json first: from here on the folder is recognisably this run, even if killed during the load.
      const record: RunRecord = {
        format: RUN_FORMAT,
        format_version: RUN_FORMAT_VERSION,
        status: "running",
        created_at: (await readRunRecord(outDir))?.created_at ?? new Date().toISOString(),
        updated_at: "",
        model_dir: modelDir.dir,
        data_dir: resolve(o.dataDir),
        config: resolvedConfig,
        seed,
        identity,
        versions: await versions(backend.version),
        backend: describeBackend(backend),
        plan: {
          trainable_parameters: trainable,
          total_parameters: total,
          modules: plan.modules.length,
          skipped: describeSkipped(plan.skipped),
          layers: formatLayers(plan.layers),
        },
        steps: {
          total: totalSteps,
          done: restored?.state.step ?? 0,
          rows_per_step: rowsPerStep,
          tokens_per_step: rowsPerStep * dataset.seqLen,
        },
        memory_estimate_bytes: est.total,
      };
      await writeRunRecord(outDir, record);

      // --- Load the base, build the adapter (fresh or restored), AdamW. -----------------------------
      const model = await loadGemma4(modelDir.config, checkpoint, { progress, kernels: o.kernels, baseDtype: o.baseDtype });
      await closeCheckpoint();
      const lora = new LoraState(plan.modules, c.lora.r, scale, restored ? { pairs: restored.adapter.pairs } : { seed });
      const optimizer = new AdamW(
        { betas: c.optimizer.betas, eps: c.optimizer.eps, weight_decay: c.optimizer.weight_decay },
        lora.params.map((p) => p.length),
      );
      try {
        if (restored) {
          restored.m.forEach((a, i) => optimizer.m[i]!.set(a));
          restored.v.forEach((a, i) => optimizer.v[i]!.set(a));
          optimizer.step = restored.state.optimizer.step;
        }
        const start: TrainProgress = restored
          ? {
              step: restored.state.step,
              data: restored.state.data,
              best: restored.state.best,
              bestWeights: restored.best,
              evalsWithoutImprovement: restored.state.evals_without_improvement,
              tokensSeen: restored.state.tokens_seen,
              trainedTokensSeen: restored.state.trained_tokens_seen,
              elapsedSeconds: restored.state.elapsed_s,
            }
          : freshProgress();
        // Logs past the restored step belong to the run that was killed: drop them.
        await truncateJsonl(outDir, METRICS_FILE, start.step);
        await truncateJsonl(outDir, SAMPLES_FILE, start.step);

        const peft: WritePeftOptions = {
          alpha: c.lora.alpha,
          useRslora: c.lora.rslora,
          dropout: c.lora.dropout,
          baseModel: modelDir.dir,
          modelPrefix: checkpoint.prefix,
          layersToTransform: c.lora.layers !== undefined || c.lora.layer_types.length < 2 ? plan.layers : undefined,
        };

        // --- The loop. -----------------------------------------------------------------------------
        let outcome;
        try {
          outcome = await train({
            runDir: outDir,
            model,
            tokenizer: modelDir.tokenizer,
            dataset,
            config: c,
            seed,
            lora,
            optimizer,
            totalSteps,
            totalRows,
            start,
            configDigest,
            peft,
            signal: o.signal,
            progress,
            log,
            onStep: async (p) => {
              record.steps.done = p.step;
              if (p.step % Math.max(1, c.log_every) === 0) await writeRunRecord(outDir, record);
            },
          });
        } catch (e) {
          if (e instanceof RunFailure) {
            record.status = "stopped";
            record.status_detail = e.message;
            await writeRunRecord(outDir, record);
          }
          throw e;
        }
        const p = outcome.progress;
        record.steps.done = p.step;
        if (outcome.end === "interrupted") {
          record.status = "interrupted";
          record.status_detail = `interrupted after step ${p.step}; continue with --resume`;
          await writeRunRecord(outDir, record);
          log(`interrupted after step ${p.step} of ${totalSteps}: checkpoint written; continue with --resume`);
          return result("interrupted");
        }

        // --- Outputs: the adapter (the best one under keep_best), the report, run.json complete. ----
        const useBest = c.keep_best && p.bestWeights !== undefined;
        const adapterDir = join(outDir, ADAPTER_DIR);
        await writePeftAdapter(adapterDir, useBest ? p.bestWeights! : lora.snapshot(), peft);
        record.adapter_step = useBest ? p.best!.step : p.step;
        record.status = "complete";
        delete record.status_detail;
        record.final = {
          loss: outcome.lastLoss,
          eval_loss: outcome.lastEval?.loss ?? null,
          eval_perplexity: outcome.lastEval?.perplexity ?? null,
          tokens_per_s: outcome.tokensPerSecond,
          elapsed_s: p.elapsedSeconds,
        };
        await writeTrainReport(outDir, {
          record,
          banner,
          metrics: await readJsonl(outDir, METRICS_FILE),
          samples: await readJsonl(outDir, SAMPLES_FILE),
        });
        await writeRunRecord(outDir, record);
        log(
          `wrote ${adapterDir}/ (weights of step ${record.adapter_step}${useBest ? ", the best eval loss" : ""}) and ${join(outDir, REPORT_FILE)}`,
        );
        return result("complete");

        function result(status: "complete" | "interrupted"): FineTuneResult {
          return {
            outDir,
            adapterDir: join(outDir, ADAPTER_DIR),
            status,
            steps: p.step,
            totalSteps,
            loss: outcome!.lastLoss,
            evalLoss: outcome!.lastEval?.loss ?? null,
            evalPerplexity: outcome!.lastEval?.perplexity ?? null,
            tokensPerSecond: outcome!.tokensPerSecond,
            seconds: p.elapsedSeconds,
          };
        }
      } finally {
        lora.dispose();
        model.dispose();
      }
    } finally {
      release();
    }
  } finally {
    await closeCheckpoint();
  }
}

/**
 * Decides what `outDir` is: "fresh" (absent or empty, or an owntune run replaced under --force),
 * "resume" (the same run, not complete, under --resume) or "complete" (the same run, done). Anything
 * else is a UserError: a file, a folder that holds something other than an owntune run, another run.
 */
async function prepareRunDir(
  outDir: string,
  o: {
    config: Record<string, unknown>;
    identity: RunIdentity;
    free: ReadonlySet<string>;
    resume: boolean;
    force: boolean;
    field(f: string): string;
    log(l: string): void;
  },
): Promise<"fresh" | "resume" | "complete"> {
  let entries: string[];
  try {
    if (!(await stat(outDir)).isDirectory()) throw new UserError("exists and is not a folder; choose another --out", { file: outDir });
    entries = await readdir(outDir);
  } catch (e) {
    if (isUserError(e)) throw e;
    return "fresh"; // absent
  }
  const record = await readRunRecord(outDir);
  if (!record) {
    // Our own lock and temporary names (a run killed before it wrote run.json) do not make it a user's folder.
    if (entries.every((n) => n === LOCK_FILE || /\.tmp-\d+-[0-9a-f]{8}/.test(n))) return "fresh";
    throw new UserError("is not empty and holds no owntune training run (no run.json); nothing there was changed", {
      file: outDir,
      hint: "choose another --out",
    });
  }
  if (o.force) {
    for (const name of entries)
      if (RUN_ENTRIES.includes(name) || name === LOCK_FILE || /\.tmp-\d+-[0-9a-f]{8}/.test(name))
        await rm(join(outDir, name), { recursive: true, force: true });
    o.log(`train: --force: removed the earlier run in ${outDir}`);
    return "fresh";
  }
  const identityDiff = firstDifference(record.identity, o.identity);
  if (identityDiff) {
    const what = identityDiff.path.startsWith("model")
      ? "base model"
      : identityDiff.path.startsWith("runtime")
        ? "kernels or base dtype"
        : "dataset";
    throw new UserError(`holds a run trained on another ${what} (${identityDiff.path} differs)`, {
      file: join(outDir, RUN_FILE),
      hint: o.resume
        ? `resume with the same ${what}, or start a new run in another --out (or --force to replace this one)`
        : "choose another --out, or --force to replace it",
    });
  }
  const diff = firstDifference(stripFree(record.config, o.free), stripFree({ ...o.config }, o.free));
  if (diff) {
    throw new UserError(
      `${o.field(diff.path)} is ${JSON.stringify(diff.after)} now but ${JSON.stringify(diff.before)} in the run already here`,
      {
        file: join(outDir, RUN_FILE),
        hint: o.resume
          ? "a resume must keep every setting that changes the result; use the earlier value, or start a new run in another --out"
          : "choose another --out, or --force to replace it",
      },
    );
  }
  if (record.status === "complete") return "complete";
  if (!o.resume) {
    throw new UserError(`holds this run, interrupted after step ${record.steps.done} of ${record.steps.total}`, {
      file: outDir,
      hint: "pass --resume to continue it, or --force to start over",
    });
  }
  return "resume";
}

/** The newest checkpoint that loads and checks out; damaged ones are reported and skipped. */
async function newestCheckpoint(
  outDir: string,
  config: Parameters<typeof loadCheckpoint>[1],
  names: readonly string[],
  digest: string,
  log: (l: string) => void,
): Promise<LoadedCheckpoint | undefined> {
  for (const c of await listCheckpoints(outDir)) {
    try {
      const loaded = await loadCheckpoint(c.dir, config, names);
      if (loaded.state.config_digest !== digest)
        throw new UserError("was written for another config or inputs than this run's", { file: c.dir });
      return loaded;
    } catch (e) {
      if (!isUserError(e)) throw e;
      log(`warning: skipping checkpoint ${c.dir}: ${e.format()}`);
    }
  }
  return undefined;
}

function stripFree(config: Record<string, unknown>, free: ReadonlySet<string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).filter(([k]) => !free.has(k)));
}

function describeTokenizer(source: string, sha: string): string {
  return `${source === "default-gemma3" ? "the default Gemma 3 tokenizer" : "tokenizer.json"}, sha256 ${sha.slice(0, 12)}…`;
}

function fmtNum(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(4);
}

async function versions(tfjs: string): Promise<Record<string, string>> {
  const own = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
  return { owntune: own.version, node: process.versions.node, tfjs };
}
