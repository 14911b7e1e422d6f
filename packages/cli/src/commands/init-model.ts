// `owntune init-model --out DIR (--preset NAME | --config config.json) [--seed N] [--tokenizer DIR] [--dtype bf16|f32]`
import { GEMMA3_TOKENIZER_WRITTEN_WARNING } from "@owntune/tokenizer";
import { claimOutputDir, didYouMean, UserError } from "@owntune/core";
import { checkDiskSpace, countParameters, initModel, presetNames, presets, readGemma4Config, type Gemma4Config } from "@owntune/model";
import { Option, type Command } from "commander";
import { commandIO, intFlag } from "../cli-io.js";

interface InitModelFlags {
  out: string;
  preset?: string;
  config?: string;
  seed: string;
  tokenizer?: string;
  dtype: "bf16" | "f32";
  maxShardSize?: string;
  force?: boolean;
}

/** The config named by --preset or --config (exactly one). */
async function chooseConfig(flags: InitModelFlags): Promise<Gemma4Config> {
  if ((flags.preset === undefined) === (flags.config === undefined)) {
    throw new UserError("give exactly one of --preset NAME or --config config.json", { hint: `presets: ${presetNames.join(", ")}` });
  }
  if (flags.config !== undefined) return readGemma4Config(flags.config);
  const make = presets[flags.preset!];
  if (!make) {
    const close = didYouMean(flags.preset!, presetNames);
    throw new UserError(`unknown preset "${flags.preset}"${close ? ` (did you mean "${close}"?)` : ""}; known: ${presetNames.join(", ")}`, {
      field: "--preset",
    });
  }
  return make();
}

export function registerInitModel(program: Command): void {
  program
    .command("init-model")
    .description("write a model directory (Hugging Face layout) with deterministic random weights")
    .requiredOption("--out <dir>", "output folder (replaced atomically when complete)")
    .option("--preset <name>", `model shape: ${presetNames.join(", ")}`)
    .option("--config <file>", "a config.json to take the shape from instead of a preset")
    .option("--seed <n>", "seed of the random weights", "0")
    .option("--tokenizer <dir>", "folder with tokenizer.json (+ tokenizer_config.json) to copy in; default: the Gemma 3 tokenizer")
    .addOption(new Option("--dtype <dtype>", "stored dtype of the weights").choices(["bf16", "f32"]).default("bf16"))
    .option("--max-shard-size <bytes>", "split the weights into shards of at most this many bytes (default 5000000000)")
    .option("--force", "replace a model folder an earlier init-model wrote there (never anything else)")
    .action(async (flags: InitModelFlags, cmd: Command) => {
      const io = commandIO(cmd);
      const config = await chooseConfig(flags);
      const seed = intFlag("--seed", flags.seed, 0, 0xffffffff)!;
      const maxShardBytes = intFlag("--max-shard-size", flags.maxShardSize, 1);
      await claimOutputDir(flags.out, "model", { force: flags.force, field: "--out", log: io.log });
      const params = countParameters(config).total;
      const bytes = params * (flags.dtype === "bf16" ? 2 : 4);
      await checkDiskSpace(flags.out, bytes);
      io.log(`writing ${(params / 1e6).toFixed(1)}M parameters (${(bytes / 1e6).toFixed(1)} MB ${flags.dtype}) to ${flags.out}`);
      const r = await initModel({
        outDir: flags.out,
        config,
        seed,
        dtype: flags.dtype,
        tokenizerDir: flags.tokenizer,
        maxShardBytes,
        preset: flags.preset,
        progress: io.progress,
      });
      if (r.isDefaultGemma3) io.log(`warning: ${GEMMA3_TOKENIZER_WRITTEN_WARNING}`);
      io.result(
        {
          out: r.outDir,
          files: r.files,
          parameters: r.parameters,
          weightBytes: r.weightBytes,
          seed,
          dtype: flags.dtype,
          tokenizer: r.tokenizer,
          isDefaultGemma3: r.isDefaultGemma3,
        },
        `${r.outDir}: ${r.files.join(", ")}`,
      );
    });
}
