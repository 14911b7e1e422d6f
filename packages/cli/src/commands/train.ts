// `owntune train --model DIR --data DATASET_DIR --out RUN_DIR [--config train.yaml] [--set key=value]...
// [--resume] [--force]`: one LoRA training stage. train.yaml holds a recipe's `train:` keys without that
// level, and --set uses the same paths (`--set optimizer.lr=1e-4`).
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { trainSchema } from "@owntune/lora";
import { UserError } from "@owntune/core";
import { parseBaseDtype, parseKernelName } from "@owntune/model";
import type { Command } from "commander";
import { commandIO } from "../cli-io.js";
import { parseWithOverrides } from "../recipe.js";
import { runTraining, trainSummary } from "../stages/train.js";

const collect = (value: string, previous: string[]) => [...previous, value];

interface TrainFlags {
  model: string;
  data: string;
  out: string;
  config?: string;
  set: string[];
  resume?: boolean;
  force?: boolean;
  backend?: string;
  kernels?: string;
  baseDtype?: string;
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "LoRA fine-tune a model on a curated dataset: writes a run folder with adapter/ (PEFT), run.json, metrics.jsonl, report.html",
    )
    .requiredOption("--model <dir>", "base model folder (Hugging Face layout)")
    .requiredOption("--data <dir>", "curated dataset folder (owntune curate)")
    .requiredOption("--out <dir>", "run folder")
    .option("--config <file>", "training config (YAML: a recipe's train keys without the train: level)")
    .option("--set <key=value>", "override a training field, e.g. --set optimizer.lr=1e-4 (repeatable)", collect, [])
    .option("--resume", "continue from the run folder's newest complete checkpoint")
    .option("--force", "replace an earlier owntune training run in --out")
    .option("--backend <name>", "force a TensorFlow.js backend: tfjs-node, wasm or cpu")
    .option(
      "--kernels <name>",
      "kernels for the frozen base: native (ggml) or tfjs (default: OWNTUNE_KERNELS, else native when ggml loads)",
    )
    .option(
      "--base-dtype <type>",
      "how the frozen base is held: auto, f32, bf16, q8_0, q4_0, q4_k (QLoRA-style; the adapter still exports merged into the full-precision checkpoint)",
    )
    .action(async (flags: TrainFlags, cmd: Command) => {
      const io = commandIO(cmd);
      let text = "{}";
      let file = "--set";
      if (flags.config !== undefined) {
        file = flags.config;
        try {
          text = await readFile(flags.config, "utf8");
        } catch (e) {
          throw new UserError(
            (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : `cannot read (${(e as NodeJS.ErrnoException).code})`,
            { file },
          );
        }
      }
      const config = parseWithOverrides(trainSchema, text, file, flags.set);
      const r = await runTraining({
        modelDir: resolve(flags.model),
        dataDir: resolve(flags.data),
        outDir: resolve(flags.out),
        config,
        configFile: flags.config,
        defaultSeed: 0,
        resume: flags.resume,
        force: flags.force,
        backend: flags.backend,
        kernels: flags.kernels === undefined ? undefined : parseKernelName(flags.kernels),
        baseDtype: flags.baseDtype === undefined ? undefined : parseBaseDtype(flags.baseDtype),
        progress: io.progress,
        log: io.log,
      });
      const s = trainSummary(r);
      if (r.status === "interrupted") process.exitCode = 130;
      io.result(
        { outDir: r.outDir, ...s },
        r.status === "interrupted"
          ? `interrupted after step ${r.steps} of ${r.totalSteps}; continue with: owntune train … --resume`
          : `${r.status === "reused" ? "already trained" : "trained"}: ${r.steps} steps, loss ${s.loss ?? "-"}, eval loss ${s.eval_loss ?? "-"} (perplexity ${s.eval_perplexity ?? "-"}), ${s.tokens_per_s} tok/s\nadapter: ${r.adapterDir}`,
      );
    });
}
