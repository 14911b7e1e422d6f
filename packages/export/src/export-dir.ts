// One export stage: a model folder (and optionally a PEFT adapter) → an export folder holding
// `model-<QUANT>.gguf`, `adapter.gguf`, `merged/`, `Modelfile` and `verify.json` (design.md "Files").
import { basename, join, relative } from "node:path";
import { silentProgress, withAtomicDir, writeFileAtomic, type Progress } from "@owntune/core";
import { loadModelDir } from "@owntune/model";
import { readPeftAdapter, type AdapterWeights } from "@owntune/lora";
import { exportAdapterGguf } from "./adapter-gguf.js";
import { assertLlamaCppCanRun, exportGguf } from "./export-gguf.js";
import { endOfGenerationIds, readTokenizerFiles } from "./gguf-tokenizer.js";
import { exportMerged } from "./merged.js";
import { chatFormat, goChatTemplate, modelfileText } from "./modelfile.js";
import type { QuantMix } from "./quant-mix.js";
import { runLlama } from "./llama-runner.js";
import type { QuantizerInfo } from "./quant/quantizer.js";
import { verifyGguf, type ScoreFn, type VerifyReport } from "./verify.js";

export interface ExportDirOptions {
  modelDir: string;
  /** A PEFT adapter folder. */
  adapterDir?: string;
  outDir: string;
  quant: QuantMix;
  /** Keep the adapter out of the model GGUF (it goes to adapter.gguf, applied at run time). */
  noMerge?: boolean;
  /** Also write adapter.gguf when the adapter is merged. */
  adapterGguf?: boolean;
  /**
   * With a merged adapter and adapterGguf: also write the base model without the adapter,
   * `base-<QUANT>.gguf`, which adapter.gguf applies to (verify then checks that pair too).
   */
  baseGguf?: boolean;
  /** After the checks, let llama.cpp complete this prompt greedily from the exported file (chat-formatted when `chat`). */
  sample?: { prompt: string; maxTokens: number; chat: boolean };
  /** Write merged/ (HF layout, adapter merged). */
  merged?: boolean;
  mergedDtype?: "bf16" | "f32";
  /** Run verify at the end (needs `score`). */
  verify?: boolean;
  score?: ScoreFn;
  /** Verify's probe texts (default PROBE_TEXTS). */
  probes?: readonly string[];
  progress?: Progress;
  log?: (line: string) => void;
  /** Threads quantizing the GGUF (default: one per core). */
  threads?: number;
}

export interface ExportDirResult {
  outDir: string;
  gguf: string;
  adapterGguf?: string;
  merged?: string;
  modelfile: string;
  bytes: number;
  sourceBytes: number;
  seconds: number;
  /** Which code quantized (ggml's own quantizer, or ours in JavaScript). */
  quantizer: QuantizerInfo;
  verify?: VerifyReport;
  /** base-<QUANT>.gguf, when written. */
  baseGguf?: string;
  /** The check of adapter.gguf applied to base-<QUANT>.gguf (verify-adapter.json). */
  verifyAdapter?: VerifyReport;
  /** llama.cpp's greedy completion of `sample.prompt` from the exported model. */
  sample?: { prompt: string; completion: string; tokens: number } | { prompt: string; error: string };
  warnings: string[];
}

/** Runs the whole export into `outDir`, which appears (or replaces an earlier one) only when all of it is written. */
export async function exportDir(o: ExportDirOptions): Promise<ExportDirResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const progress = o.progress ?? silentProgress;
  const model = await loadModelDir(o.modelDir);
  try {
    assertLlamaCppCanRun(model.config, join(o.modelDir, "config.json"));
    const peft = o.adapterDir ? await readPeftAdapter(o.adapterDir, model.config) : undefined;
    const adapter: AdapterWeights | undefined = peft?.weights;
    const tokenizerDir = model.tokenizer.identity.dir;
    const tokenizer = await readTokenizerFiles(tokenizerDir, model.config.vocab_size, {
      bos: model.config.bos_token_id,
      eos: Array.isArray(model.config.eos_token_id) ? model.config.eos_token_id[0] : model.config.eos_token_id,
      pad: model.config.pad_token_id,
    });
    const merge = adapter !== undefined && !o.noMerge;
    // Built in a temporary folder renamed into place at the end: the export appears complete or not at all.
    return await withAtomicDir(o.outDir, async (tmp) => {
      const inTmp = (final: string) => join(tmp, basename(final));
      const gguf = join(o.outDir, `model-${o.quant}.gguf`);
      log(`writing ${gguf}${merge ? " (adapter merged)" : ""}`);
      const written = await exportGguf({
        config: model.config,
        source: model.checkpoint,
        tokenizer,
        mix: o.quant,
        out: inTmp(gguf),
        adapter: merge ? adapter : undefined,
        progress,
        threads: o.threads,
      });
      let adapterGguf: string | undefined;
      if (adapter && (o.noMerge || o.adapterGguf)) {
        adapterGguf = join(o.outDir, "adapter.gguf");
        log(`writing ${adapterGguf}`);
        await exportAdapterGguf({ config: model.config, adapter, out: inTmp(adapterGguf), progress });
      }
      let baseGguf: string | undefined;
      if (merge && adapterGguf && o.baseGguf) {
        baseGguf = join(o.outDir, `base-${o.quant}.gguf`);
        log(`writing ${baseGguf} (the base adapter.gguf applies to)`);
        await exportGguf({
          config: model.config,
          source: model.checkpoint,
          tokenizer,
          mix: o.quant,
          out: inTmp(baseGguf),
          progress,
          threads: o.threads,
        });
      }
      let merged: string | undefined;
      if (o.merged) {
        merged = join(o.outDir, "merged");
        log(`writing ${merged}/`);
        await exportMerged({
          baseDir: o.modelDir,
          config: model.config,
          source: model.checkpoint,
          adapter,
          outDir: join(tmp, "merged"),
          dtype: o.mergedDtype,
          progress,
        });
      }
      const modelfile = join(o.outDir, "Modelfile");
      const template = model.tokenizer.chatTemplate
        ? goChatTemplate(
            chatFormat(
              (messages, gen) => model.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: gen }),
              tokenizer.tokens[tokenizer.specialIds.bos ?? -1],
            ),
          )
        : undefined;
      const stops = endOfGenerationIds(tokenizer).map((id) => tokenizer.tokens[id]!);
      await writeFileAtomic(
        inTmp(modelfile),
        modelfileText({
          from: `./${relative(o.outDir, gguf)}`,
          adapter: adapterGguf && !merge ? `./${relative(o.outDir, adapterGguf)}` : undefined,
          template,
          stops,
        }),
      );
      let verify: VerifyReport | undefined;
      if (o.verify) {
        if (!o.score) throw new Error("verify needs a score function");
        log("verifying against llama.cpp");
        verify = await verifyGguf({
          gguf: inTmp(gguf),
          config: model.config,
          encode: (text) => model.tokenizer.encode(text),
          score: o.score,
          source: model.checkpoint,
          adapter: merge ? undefined : adapter,
          adapterGguf: merge || !adapterGguf ? undefined : inTmp(adapterGguf),
          mergedAdapter: merge ? adapter : undefined,
          probes: o.probes,
          out: join(tmp, "verify.json"),
          reportAs: { gguf, adapterGguf: merge ? undefined : adapterGguf },
        });
      }
      let verifyAdapter: VerifyReport | undefined;
      if (o.verify && baseGguf && adapter && adapterGguf) {
        log(`verifying ${adapterGguf} on ${baseGguf} against llama.cpp`);
        verifyAdapter = await verifyGguf({
          gguf: inTmp(baseGguf),
          config: model.config,
          encode: (text) => model.tokenizer.encode(text),
          score: o.score!,
          source: model.checkpoint,
          adapter,
          adapterGguf: inTmp(adapterGguf),
          probes: o.probes,
          out: join(tmp, "verify-adapter.json"),
          reportAs: { gguf: baseGguf, adapterGguf },
        });
      }
      let sample: ExportDirResult["sample"];
      if (o.sample) {
        const text =
          o.sample.chat && model.tokenizer.chatTemplate
            ? model.tokenizer.applyChatTemplate([{ role: "user", content: o.sample.prompt }], { addGenerationPrompt: true })
            : o.sample.prompt;
        const reply = await runLlama({
          modelPath: inTmp(gguf),
          adapterPath: merge || !adapterGguf ? undefined : inTmp(adapterGguf),
          texts: [],
          contextSize: 512,
          generate: { prompt: text, maxTokens: o.sample.maxTokens },
        });
        sample =
          reply.ok && reply.generated
            ? { prompt: o.sample.prompt, completion: reply.generated.text, tokens: reply.generated.tokens.length }
            : { prompt: o.sample.prompt, error: reply.ok ? "no generation" : `${reply.stage}: ${reply.error}` };
      }
      return {
        outDir: o.outDir,
        gguf,
        adapterGguf,
        merged,
        modelfile,
        bytes: written.bytes,
        sourceBytes: written.sourceBytes,
        quantizer: written.quantizer,
        seconds: (performance.now() - t0) / 1000,
        verify,
        baseGguf,
        verifyAdapter,
        sample,
        warnings: model.warnings,
      };
    });
  } finally {
    await model.checkpoint.close();
  }
}
