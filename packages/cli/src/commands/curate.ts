// `owntune curate --config C.yaml` or `owntune curate --input F... --out DIR [flags]`: one curate stage.
// The config file holds the same fields as a recipe's `curate:` section (plus `out`); its relative
// paths resolve against its own folder. `--shard i/N --out PARTS/i` runs the per-document steps on
// 1/N of the input; `--merge PARTS --out DIR` runs the global steps over the shards' parts.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import {
  curate,
  curateMerge,
  curateSchema,
  curateShard,
  parseShardSpec,
  type CurateConfigInput,
  type CurateSummary,
  type OutputFormat,
} from "@owntune/curate";
import { claimOutputDir, isUserError, parseLocated, UserError, validateLocated, type LocatedSource } from "@owntune/core";
import type { Command } from "commander";
import { z } from "zod";
import { commandIO, intFlag, numberFlag } from "../cli-io.js";

const collect = (value: string, previous: string[]) => [...previous, value];

const fileSchema = curateSchema.extend({ out: z.string().min(1).optional().describe("Output folder.") }).strict();

interface CurateFlags {
  config?: string;
  input: string[];
  out?: string;
  model?: string;
  seqLen?: string;
  seed?: string;
  packing: boolean;
  valFraction?: string;
  skipBadRows?: boolean;
  workers?: string;
  shard?: string;
  merge?: string;
  memoryMb?: string;
  format?: string;
  force?: boolean;
}

export function registerCurate(program: Command): void {
  program
    .command("curate")
    .description("read, filter, dedup, format with loss masks and pack data into an Arrow dataset directory")
    .option("--config <file>", "curate config (YAML/JSON: the fields of a recipe's curate section, plus out)")
    .option("--input <path>", "input file or folder (repeatable); instead of --config", collect, [])
    .option("--out <dir>", "output dataset directory")
    .option("--model <dir>", "model folder whose tokenizer and chat template to use (default: the Gemma tokenizer)")
    .option("--seq-len <n>", "tokens per row (default 2048)")
    .option("--seed <n>", "seed for shuffle, split and sampling (default 0)")
    .option("--no-packing", "one example per row, padded, instead of packing")
    .option("--val-fraction <x>", "share of examples held out for validation (default 0.05)")
    .option("--skip-bad-rows", "skip malformed rows (counted in the report) instead of stopping")
    .option("--workers <n>", "worker threads (default: one per core; 0 = main thread)")
    .option("--shard <i/N>", "per-document steps only, on shard i of N of the input; --out is this shard's part folder (PARTS/i)")
    .option("--merge <parts>", "global steps only, over the part folders the --shard runs wrote under PARTS")
    .option(
      "--format <f>",
      "arrow (default), or hf-parquet: also write the examples as Hugging Face datasets Parquet (data/*.parquet) for TRL/Axolotl",
    )
    .option("--memory-mb <n>", "kept examples held in memory before spilling to Parquet + DuckDB (default 512)")
    .option("--force", "replace a dataset an earlier curate wrote there (never anything else)")
    .action(async (flags: CurateFlags, cmd: Command) => {
      const io = commandIO(cmd);
      let input: CurateConfigInput & { out?: string };
      let base = process.cwd();
      let located: LocatedSource | undefined;
      if (flags.config !== undefined) {
        if (flags.input.length > 0) throw new UserError("give either --config or --input, not both", { field: "--input" });
        let text: string;
        try {
          text = await readFile(flags.config, "utf8");
        } catch {
          throw new UserError("no such file", { file: flags.config });
        }
        located = parseLocated(text, flags.config);
        input = validateLocated(fileSchema, located, flags.config);
        base = dirname(resolve(flags.config));
      } else {
        if (flags.input.length === 0) throw new UserError("give --config C.yaml or at least one --input", { field: "--input" });
        input = { inputs: flags.input.map((path) => ({ path })) };
      }
      const seqLen = intFlag("--seq-len", flags.seqLen, 1);
      const seed = intFlag("--seed", flags.seed, 0);
      const workers = intFlag("--workers", flags.workers, 0);
      const valFraction =
        flags.valFraction === undefined
          ? undefined
          : numberFlag(flags.valFraction, "--val-fraction", (x) => x >= 0 && x <= 1, "a number in [0, 1]");
      const merged = {
        ...input,
        ...(seqLen !== undefined ? { seq_len: seqLen } : {}),
        ...(seed !== undefined ? { seed } : {}),
        ...(workers !== undefined ? { workers } : {}),
        ...(valFraction !== undefined ? { val_fraction: valFraction } : {}),
        ...(flags.packing === false ? { packing: false } : {}),
        ...(flags.skipBadRows ? { skip_bad_rows: true } : {}),
      };
      const parsed = fileSchema.safeParse(merged);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new UserError(issue.message, { field: issue.path.join(".") });
      }
      const { out, ...config } = parsed.data;
      const outFlag = flags.out ?? (out !== undefined ? (isAbsolute(out) ? out : resolve(base, out)) : undefined);
      if (outFlag === undefined) throw new UserError("no output folder: pass --out DIR (or set out in the config)", { field: "--out" });
      const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
      if (flags.shard !== undefined && flags.merge !== undefined)
        throw new UserError("give --shard or --merge, not both", { field: "--merge" });
      const memoryMb = intFlag("--memory-mb", flags.memoryMb, 1);
      if (flags.format !== undefined && flags.format !== "arrow" && flags.format !== "hf-parquet") {
        throw new UserError(`expected arrow or hf-parquet, got "${flags.format}"`, { field: "--format" });
      }
      if (flags.model !== undefined && !existsSync(flags.model))
        throw new UserError("no such folder", { file: flags.model, field: "--model" });
      const run = {
        config,
        outDir: resolve(outFlag),
        resolvePath: at,
        tokenizerDir: flags.model !== undefined ? resolve(flags.model) : config.tokenizer !== undefined ? at(config.tokenizer) : undefined,
        progress: io.progress,
        log: io.log,
        memoryBytes: memoryMb === undefined ? undefined : memoryMb * 1024 * 1024,
        format: flags.format as OutputFormat | undefined,
      };
      let summary: CurateSummary;
      try {
        if (flags.shard !== undefined) {
          const s = await curateShard({ ...run, shard: parseShardSpec(flags.shard) });
          io.result(
            { outDir: s.outDir, seconds: s.seconds, bytesRead: s.bytesRead, rowsRead: s.rowsRead },
            `wrote shard ${flags.shard} to ${s.outDir}: ${s.rowsRead} rows read in ${s.seconds.toFixed(1)} s (${(s.bytesRead / 1e6 / s.seconds).toFixed(2)} MB/s); merge with --merge`,
          );
          return;
        }
        await claimOutputDir(outFlag, "dataset", { force: flags.force, field: flags.out !== undefined ? "--out" : "out", log: io.log });
        summary = flags.merge !== undefined ? await curateMerge({ ...run, partsDir: resolve(flags.merge) }) : await curate(run);
      } catch (e) {
        // A problem with a config field is reported at its line in the config file.
        if (located && isUserError(e) && e.file === undefined && e.field !== undefined) {
          throw new UserError(e.message, { file: flags.config, line: located.lineOf(e.field.split(".")), field: e.field, hint: e.hint });
        }
        throw e;
      }
      const m = summary.manifest;
      const t = m.splits.train;
      io.result(
        {
          outDir: summary.outDir,
          seconds: summary.seconds,
          bytesRead: summary.bytesRead,
          splits: m.splits,
          counts: m.counts,
          drops: m.drops,
          pii: m.pii,
        },
        [
          `wrote ${summary.outDir}`,
          `  train: ${t.rows} rows, ${t.examples} examples, ${t.tokens} tokens, packing efficiency ${(100 * t.packing_efficiency).toFixed(1)}%`,
          `  val: ${m.splits.val.rows} rows, ${m.splits.val.examples} examples`,
          `  read ${m.counts.rows_read} rows in ${summary.seconds.toFixed(1)} s (${(summary.bytesRead / 1e6 / summary.seconds).toFixed(2)} MB/s); see report.html`,
        ].join("\n"),
      );
    });
}
