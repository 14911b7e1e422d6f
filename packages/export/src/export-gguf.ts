// A Gemma 4 text model as one GGUF file for llama.cpp: metadata, tokenizer, and every tensor
// renamed, converted or quantized per the chosen mix, streamed from its source (with a LoRA
// adapter merged in on the way when given). Reference: spec/gemma4.md §5, spec/gguf.md §1–2.
import { basename } from "node:path";
import { UserError, type Progress } from "@owntune/core";
import { expectedTensors, llamaCppKvShareProblem, type Gemma4Config, type TensorSource } from "@owntune/model";
import { mergedRowReader, type AdapterWeights } from "@owntune/lora";
import type { GgufEntry } from "./gguf-format.js";
import { gemma4Entries, generalEntries, ropeFreqs } from "./gguf-metadata.js";
import { tokenizerEntries, type TokenizerFiles } from "./gguf-tokenizer.js";
import { writeGguf, type GgufTensorInput } from "./gguf-writer.js";
import { ggmlTypeName } from "./quant/ggml-types.js";
import { quantizerInfo, type QuantizerInfo } from "./quant/quantizer.js";
import { mixFileType, planTensorTypes, type QuantMix } from "./quant-mix.js";
import { compareGgufTensorNames, ggufDims, ggufTensorName, ROPE_FREQS_NAME } from "./tensor-names.js";

export interface ExportGgufOptions {
  config: Gemma4Config;
  /** Base weights by HF name (prefix stripped). */
  source: TensorSource;
  tokenizer: TokenizerFiles;
  mix: QuantMix;
  /** Output path of the .gguf file. */
  out: string;
  /** general.name (default: the output file's base name). */
  name?: string;
  /** A LoRA adapter merged into the base weights before converting (W + scale·B·A). */
  adapter?: AdapterWeights;
  progress?: Progress;
  /** Threads quantizing (default: one per core). */
  threads?: number;
}

export interface ExportGgufResult {
  path: string;
  bytes: number;
  /** Float32 bytes of source weights converted. */
  sourceBytes: number;
  /** ggml type name of each tensor, by GGUF name. */
  tensorTypes: Record<string, string>;
  /** Which code quantized (ggml's own quantizer, or ours in JavaScript), and why. */
  quantizer: QuantizerInfo;
}

/** Refuses configs llama.cpp cannot run (it would abort its whole process): a UserError saying why. */
export function assertLlamaCppCanRun(c: Gemma4Config, file = "config.json"): void {
  const problem = llamaCppKvShareProblem(c);
  if (problem) {
    throw new UserError(problem, {
      file,
      field: "layer_types",
      hint: "export refuses to write a GGUF that would crash llama.cpp; reorder layer_types",
    });
  }
}

/**
 * Rows [start, start+count) of a source tensor (HF row-major: a row is the last axis). 2-D tensors are
 * read with `readRows`; a 1-D tensor is one GGUF row, read whole once and sliced.
 */
export function sourceRowReader(
  source: TensorSource,
): (name: string, rowLength: number, start: number, count: number) => Promise<Float32Array> {
  let cachedName: string | undefined;
  let cached: Float32Array | undefined;
  return async (name, rowLength, start, count) => {
    // A source's rows run along the first axis: for 2-D [out, in] that is a GGUF row of ne[0] = in values.
    if (source.shape(name).length >= 2) return source.readRows(name, start, count);
    if (cachedName !== name) {
      cached = undefined;
      cached = await source.read(name);
      cachedName = name;
    }
    return cached!.subarray(start * rowLength, (start + count) * rowLength);
  };
}

/** The GGUF tensor inputs of a model: every expected tensor, renamed, typed per the mix, in llama-quantize's order. */
export function modelTensorInputs(o: Pick<ExportGgufOptions, "config" | "source" | "mix" | "adapter">): GgufTensorInput[] {
  const { config, source, adapter } = o;
  const readRows = sourceRowReader(source);
  const specs = expectedTensors(config);
  for (const spec of specs) {
    if (!source.has(spec.name)) throw new UserError(`tensor ${spec.name} is missing from the model's weights`, { field: spec.name });
    const shape = source.shape(spec.name);
    if (shape.join(",") !== spec.shape.join(",")) {
      throw new UserError(`tensor ${spec.name} has shape [${shape.join(", ")}], config wants [${spec.shape.join(", ")}]`, {
        field: spec.name,
      });
    }
  }
  const entries = specs.map((spec) => {
    const name = ggufTensorName(spec.name);
    if (!name) throw new Error(`no GGUF name for ${spec.name}`);
    return { spec, name, ne: ggufDims(spec.shape) };
  });
  const freqs = ropeFreqs(config);
  const planned = [...entries.map((e) => ({ name: e.name, ne: e.ne })), { name: ROPE_FREQS_NAME, ne: [freqs.length] }];
  const types = planTensorTypes(planned, o.mix, config.num_hidden_layers);
  const inputs: GgufTensorInput[] = entries.map(({ spec, name, ne }) => {
    const rowLength = ne[0]!;
    return {
      name,
      ne,
      type: types.get(name)!,
      readRows: mergedRowReader(adapter, spec.name, (start, count) => readRows(spec.name, rowLength, start, count)),
    };
  });
  inputs.push({ name: ROPE_FREQS_NAME, ne: [freqs.length], type: types.get(ROPE_FREQS_NAME)!, readRows: async () => freqs });
  if (adapter) {
    const known = new Set(specs.map((s) => s.name.replace(/\.weight$/, "")));
    for (const m of adapter.pairs.keys()) {
      if (!known.has(m)) throw new UserError(`adapter module ${m} has no base weight in this model`, { field: m });
    }
  }
  return inputs.sort((a, b) => compareGgufTensorNames(a.name, b.name));
}

/** Writes the model as one GGUF file (atomically). */
export async function exportGguf(o: ExportGgufOptions): Promise<ExportGgufResult> {
  assertLlamaCppCanRun(o.config);
  const tensors = modelTensorInputs(o);
  const metadata = new Map<string, GgufEntry>([
    ...generalEntries({ name: o.name ?? basename(o.out).replace(/\.gguf$/, ""), fileType: mixFileType(o.mix) }),
    ...gemma4Entries(o.config),
    ...tokenizerEntries(o.tokenizer),
  ]);
  const result = await writeGguf(o.out, {
    metadata,
    tensors,
    progress: o.progress,
    label: `${o.mix} ${basename(o.out)}`,
    threads: o.threads,
  });
  return {
    path: o.out,
    bytes: result.bytes,
    sourceBytes: result.sourceBytes,
    tensorTypes: Object.fromEntries(tensors.map((t) => [t.name, ggmlTypeName(t.type)])),
    quantizer: quantizerInfo(),
  };
}
