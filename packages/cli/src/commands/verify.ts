// `owntune verify --gguf FILE --model DIR [--adapter DIR | --adapter-gguf FILE] [--out verify.json]`
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { exportAdapterGguf, ourScore, verifyGguf, type VerifyReport } from "@owntune/export";
import { readPeftAdapter } from "@owntune/lora";
import { loadModelDir } from "@owntune/model";
import { clearStaleTemps, UserError } from "@owntune/core";
import type { Command } from "commander";
import { commandIO, readJsonLines } from "../cli-io.js";

interface VerifyFlags {
  gguf: string;
  model: string;
  adapter?: string;
  out?: string;
  probes?: string;
}

/** Probe texts from a JSONL file of `{"text": ...}` lines (the built-in set when absent). */
export async function readProbes(file: string | undefined): Promise<string[] | undefined> {
  if (file === undefined) return undefined;
  const probes: string[] = [];
  for (const { line, raw, value } of await readJsonLines(file, "--probes")) {
    const t = (value as { text?: unknown } | null)?.text;
    if (typeof t !== "string" || t === "") throw new UserError(`expected {"text": "..."}, got ${raw.slice(0, 80)}`, { file, line });
    probes.push(t);
  }
  if (probes.length === 0) throw new UserError("no probe texts in this file", { file });
  return probes;
}

export function describeVerify(v: VerifyReport): string {
  const lines = [
    `${v.gguf}: ${v.ok ? "verify passed" : "verify FAILED"} (${v.weights} weights; tolerance ${v.tolerance.maxAbs} nats max, ${v.tolerance.meanAbs} mean: ${v.tolerance.reason})`,
  ];
  if (!v.llama.ok) lines.push(`  llama.cpp failed: ${v.llama.error}`, ...v.llama.logs.slice(-5).map((l) => `    ${l}`));
  for (const p of v.probes) {
    const text = JSON.stringify(p.text.length > 40 ? p.text.slice(0, 40) + "…" : p.text);
    if (p.tokenMismatchAt !== null)
      lines.push(
        `  ${text}: token ids differ at position ${p.tokenMismatchAt} (ours ${JSON.stringify(p.ours)}, llama.cpp ${JSON.stringify(p.llama)})`,
      );
    else if (p.maxAbsDiff !== null)
      lines.push(
        `  ${text}: ${p.tokens} tokens, max |Δ log p| ${p.maxAbsDiff.toExponential(2)} (tolerance ${p.tolerance.toFixed(3)}), mean ${p.meanAbsDiff!.toExponential(2)}`,
      );
  }
  if (v.llama.ok && Number.isFinite(v.logprobs.meanAbsDiff))
    lines.push(
      `  all positions: mean |Δ log p| ${v.logprobs.meanAbsDiff.toExponential(2)} (tolerance ${v.logprobs.meanTolerance.toFixed(4)})`,
    );
  if (v.weightCheck) {
    const w = v.weightCheck.worst[0];
    lines.push(
      `  weights: ${v.weightCheck.ok ? "ok" : "OFF"} (${v.weightCheck.checked} tensors${w ? `; worst ${w.tensor} ${w.type} rel. error ${w.relError.toExponential(2)} ≤ ${w.bound}` : ""})`,
    );
  }
  return lines.join("\n");
}

export function registerVerify(program: Command): void {
  program
    .command("verify")
    .description("load a GGUF in llama.cpp (node-llama-cpp, offline) and compare its tokenization and log-probabilities with ours")
    .requiredOption("--gguf <file>", "the model GGUF")
    .requiredOption("--model <dir>", "the model folder it was exported from (config, tokenizer, weights)")
    .option("--adapter <dir>", "a PEFT adapter applied on both sides (llama.cpp gets it as an adapter GGUF)")
    .option("--out <file>", "where to write verify.json (default: beside the GGUF)")
    .option(
      "--probes <file.jsonl>",
      'probe texts, one {"text": ...} per line (default: a built-in set of prose, code, scripts, emoji and chat markup)',
    )
    .action(async (flags: VerifyFlags, cmd: Command) => {
      const io = commandIO(cmd);
      if (!existsSync(flags.gguf)) throw new UserError("no such file", { file: flags.gguf });
      const probes = await readProbes(flags.probes);
      const out = flags.out ?? join(dirname(flags.gguf), "verify.json");
      await clearStaleTemps(dirname(out), io.log);
      const model = await loadModelDir(flags.model);
      const tmp = mkdtempSync(join(tmpdir(), "owntune-verify-"));
      try {
        const peft = flags.adapter ? await readPeftAdapter(flags.adapter, model.config) : undefined;
        let adapterGguf: string | undefined;
        if (peft) {
          adapterGguf = join(tmp, "adapter.gguf");
          await exportAdapterGguf({ config: model.config, adapter: peft.weights, out: adapterGguf });
        }
        io.log(`verifying ${flags.gguf} against llama.cpp`);
        const report = await verifyGguf({
          gguf: flags.gguf,
          config: model.config,
          encode: (text) => model.tokenizer.encode(text),
          score: ourScore,
          source: model.checkpoint,
          adapter: peft?.weights,
          adapterGguf,
          probes,
          out,
        });
        io.result(report, describeVerify(report));
        if (!report.ok) process.exitCode = 1;
      } finally {
        await model.checkpoint.close();
        rmSync(tmp, { recursive: true, force: true });
      }
    });
}
