// `owntune export --model DIR [--adapter DIR] --out DIR --quant TYPE [--merged] [--merged-dtype bf16|f32]
//   [--adapter-gguf] [--no-merge] [--no-verify]`
import { exportDir, isQuantMix, ourScore, QUANT_MIXES, type ExportDirResult } from "@owntune/export";
import { claimOutputDir, didYouMean, UserError } from "@owntune/core";
import { Option, type Command } from "commander";
import { commandIO, intFlag } from "../cli-io.js";
import { readProbes } from "./verify.js";

interface ExportFlags {
  model: string;
  adapter?: string;
  out: string;
  quant: string;
  merged?: boolean;
  mergedDtype: "bf16" | "f32";
  adapterGguf?: boolean;
  merge: boolean;
  verify: boolean;
  probes?: string;
  threads?: string;
  baseGguf?: boolean;
  samplePrompt?: string;
  sampleTokens: string;
  force?: boolean;
}

/** The quant type named by the user, or a UserError with the known ones. */
export function parseQuant(text: string, field = "--quant") {
  const upper = text.toUpperCase();
  if (isQuantMix(upper)) return upper;
  // Written without separators ("q4km", "Q5-K-M"), the name is unambiguous: suggest it before edit distance.
  const bare = (q: string) => q.replace(/[_\-\s]/g, "");
  const close = QUANT_MIXES.find((q) => bare(q) === bare(upper)) ?? didYouMean(upper, QUANT_MIXES);
  throw new UserError(`unknown quant type "${text}"${close ? ` (did you mean "${close}"?)` : ""}; known: ${QUANT_MIXES.join(", ")}`, {
    field,
  });
}

/** A human summary of an export. */
export function describeExport(r: ExportDirResult): string {
  const lines = [
    `wrote ${r.gguf} (${(r.bytes / 1e6).toFixed(1)} MB, ${(r.sourceBytes / 1e6 / Math.max(r.seconds, 1e-9)).toFixed(1)} MB/s of source weights, quantized by ${r.quantizer.name === "ggml" ? "ggml" : `JavaScript (${r.quantizer.reason})`})`,
  ];
  if (r.adapterGguf) lines.push(`wrote ${r.adapterGguf}`);
  if (r.merged) lines.push(`wrote ${r.merged}/`);
  if (r.baseGguf) lines.push(`wrote ${r.baseGguf}`);
  lines.push(`wrote ${r.modelfile}`);
  const verifyLine = (label: string, v: NonNullable<ExportDirResult["verify"]>) =>
    `${label}: ${v.ok ? "passed" : "FAILED"} — max |Δ log p| ${v.logprobs.maxAbsDiff.toExponential(2)} nats (tolerance ${v.tolerance.maxAbs}), ` +
    `${v.tokenization.mismatches} tokenization mismatch(es)${v.weightCheck ? `, weights ${v.weightCheck.ok ? "ok" : "OFF"}` : ""}${v.llama.ok ? "" : `, llama.cpp: ${v.llama.error}`}`;
  if (r.verify) lines.push(verifyLine("verify", r.verify));
  if (r.verifyAdapter) lines.push(verifyLine("verify adapter.gguf on the base", r.verifyAdapter));
  if (r.sample)
    lines.push(
      "error" in r.sample
        ? `llama.cpp sample: failed (${r.sample.error})`
        : `llama.cpp says (${r.sample.tokens} tokens, greedy) to ${JSON.stringify(r.sample.prompt)}:\n  ${r.sample.completion.trim().replace(/\n/g, "\n  ")}`,
    );
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join("\n");
}

export function registerExport(program: Command): void {
  program
    .command("export")
    .description("export a model (and LoRA adapter) as GGUF for llama.cpp / Ollama, then verify it against llama.cpp")
    .requiredOption("--model <dir>", "base model folder (Hugging Face layout)")
    .option("--adapter <dir>", "PEFT LoRA adapter folder; merged into the GGUF unless --no-merge")
    .requiredOption("--out <dir>", "export folder")
    .requiredOption("--quant <type>", `weight type: ${QUANT_MIXES.join(", ")}`)
    .option("--merged", "also write merged/ (Hugging Face layout, adapter merged)")
    .addOption(new Option("--merged-dtype <dtype>", "dtype of merged/").choices(["bf16", "f32"]).default("bf16"))
    .option("--adapter-gguf", "also write adapter.gguf (llama.cpp LoRA adapter)")
    .option("--no-merge", "keep the adapter out of the model GGUF: write it as adapter.gguf, applied at run time")
    .option(
      "--base-gguf",
      "with a merged adapter and --adapter-gguf: also write base-<QUANT>.gguf (what adapter.gguf applies to), and verify adapter.gguf on it",
    )
    .option("--no-verify", "skip the check against llama.cpp")
    .option("--sample-prompt <text>", "let llama.cpp complete this prompt (as a chat user turn) from the exported file, greedily")
    .option("--sample-tokens <n>", "most tokens of that completion", "48")
    .option("--threads <n>", "threads quantizing (default: one per core)")
    .option("--probes <file.jsonl>", 'verify on these texts, one {"text": ...} per line (default: a built-in set)')
    .option("--force", "replace an export folder an earlier export wrote there (never anything else)")
    .action(async (flags: ExportFlags, cmd: Command) => {
      const io = commandIO(cmd);
      const quant = parseQuant(flags.quant);
      if (!flags.merge && !flags.adapter) throw new UserError("--no-merge needs --adapter", { field: "--no-merge" });
      if (flags.adapterGguf && !flags.adapter) throw new UserError("--adapter-gguf needs --adapter", { field: "--adapter-gguf" });
      const threads = intFlag("--threads", flags.threads, 1);
      if (flags.baseGguf && !(flags.adapter && flags.adapterGguf && flags.merge))
        throw new UserError("--base-gguf needs --adapter and --adapter-gguf with the adapter merged", { field: "--base-gguf" });
      const sampleTokens = intFlag("--sample-tokens", flags.sampleTokens, 1)!;
      const probes = await readProbes(flags.probes);
      await claimOutputDir(flags.out, "export", { force: flags.force, field: "--out", log: io.log });
      const r = await exportDir({
        modelDir: flags.model,
        adapterDir: flags.adapter,
        outDir: flags.out,
        quant,
        noMerge: !flags.merge,
        adapterGguf: flags.adapterGguf,
        baseGguf: flags.baseGguf,
        sample:
          flags.samplePrompt !== undefined ? { prompt: flags.samplePrompt, maxTokens: Math.min(sampleTokens, 256), chat: true } : undefined,
        merged: flags.merged,
        mergedDtype: flags.mergedDtype,
        verify: flags.verify,
        score: ourScore,
        probes,
        threads,
        progress: io.progress,
        log: io.log,
      });
      io.result(r, describeExport(r));
      if ((r.verify && !r.verify.ok) || (r.verifyAdapter && !r.verifyAdapter.ok)) process.exitCode = 1;
    });
}
