// One export stage: a model folder (and optionally a PEFT adapter) → an export folder holding
// `model-<QUANT>.gguf`, `adapter.gguf`, `merged/`, `Modelfile` and `verify.json` (design.md "Files").
import { join, relative } from "node:path";
import { loadModelDir, silentProgress, writeFileAtomic, type AdapterWeights, type Progress } from "@owntune/model";
import { readPeftAdapter } from "@owntune/lora";
import { exportAdapterGguf } from "./adapter-gguf.js";
import { assertLlamaCppCanRun, exportGguf } from "./export-gguf.js";
import { endOfGenerationIds, readTokenizerFiles } from "./gguf-tokenizer.js";
import { exportMerged } from "./merged.js";
import { chatFormat, goChatTemplate, modelfileText } from "./modelfile.js";
import type { QuantMix } from "./quant-mix.js";
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
  warnings: string[];
}

/** Runs the whole export into `outDir` (files are written atomically one by one). */
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
    const gguf = join(o.outDir, `model-${o.quant}.gguf`);
    log(`writing ${gguf}${merge ? " (adapter merged)" : ""}`);
    const written = await exportGguf({ config: model.config, source: model.checkpoint, tokenizer, mix: o.quant, out: gguf, adapter: merge ? adapter : undefined, progress, threads: o.threads });
    let adapterGguf: string | undefined;
    if (adapter && (o.noMerge || o.adapterGguf)) {
      adapterGguf = join(o.outDir, "adapter.gguf");
      log(`writing ${adapterGguf}`);
      await exportAdapterGguf({ config: model.config, adapter, out: adapterGguf, progress });
    }
    let merged: string | undefined;
    if (o.merged) {
      merged = join(o.outDir, "merged");
      log(`writing ${merged}/`);
      await exportMerged({ baseDir: o.modelDir, config: model.config, source: model.checkpoint, adapter, outDir: merged, dtype: o.mergedDtype, progress });
    }
    const modelfile = join(o.outDir, "Modelfile");
    const template = model.tokenizer.chatTemplate
      ? goChatTemplate(chatFormat((messages, gen) => model.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: gen }), tokenizer.tokens[tokenizer.specialIds.bos ?? -1]))
      : undefined;
    const stops = endOfGenerationIds(tokenizer).map((id) => tokenizer.tokens[id]!);
    await writeFileAtomic(
      modelfile,
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
        gguf,
        config: model.config,
        encode: (text) => model.tokenizer.encode(text),
        score: o.score,
        source: model.checkpoint,
        adapter: merge ? undefined : adapter,
        adapterGguf: merge ? undefined : adapterGguf,
        mergedAdapter: merge ? adapter : undefined,
        probes: o.probes,
        out: join(o.outDir, "verify.json"),
      });
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
      warnings: model.warnings,
    };
  } finally {
    await model.checkpoint.close();
  }
}
