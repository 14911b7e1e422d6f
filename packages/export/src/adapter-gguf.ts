// A LoRA adapter as llama.cpp's adapter GGUF (llama_adapter_lora_init): general.type "adapter",
// the base architecture, adapter.lora.alpha as float32, and `<base tensor>.lora_a` [in, r] /
// `.lora_b` [r, out] per adapted weight — PEFT's lora_A [r, in] and lora_B [out, r] bytes as they
// are. Reference: spec/gguf.md §4.
import { basename } from "node:path";
import { UserError, type Progress } from "@owntune/core";
import { expectedTensors, type Gemma4Config } from "@owntune/model";
import type { AdapterWeights } from "@owntune/lora";
import { gguf, type GgufEntry } from "./gguf-format.js";
import { writeGguf, type GgufTensorInput, type WriteGgufResult } from "./gguf-writer.js";
import { GgmlType } from "./quant/ggml-types.js";
import { compareGgufTensorNames, ggufLoraTarget } from "./tensor-names.js";

export interface AdapterGgufOptions {
  config: Gemma4Config;
  adapter: AdapterWeights;
  out: string;
  name?: string;
  progress?: Progress;
}

/**
 * llama.cpp applies s = alpha / r with r = lora_b.ne[0]; writing alpha = scale·r reproduces PEFT's
 * scale whether it came from alpha/r or rsLoRA's alpha/√r.
 */
export function ggufLoraAlpha(adapter: AdapterWeights): number {
  const ranks = new Set([...adapter.pairs.values()].map((p) => p.rank));
  if (ranks.size !== 1)
    throw new RangeError(`adapter pairs have several ranks (${[...ranks].join(", ")}); llama.cpp takes one alpha per file`);
  return adapter.scale * [...ranks][0]!;
}

/** Writes `adapter` for the base model `config` as an adapter GGUF (F32 tensors). */
export async function exportAdapterGguf(o: AdapterGgufOptions): Promise<WriteGgufResult> {
  const shapes = new Map(expectedTensors(o.config).map((t) => [t.name, t.shape]));
  const tensors: GgufTensorInput[] = [];
  for (const [module, p] of o.adapter.pairs) {
    const target = ggufLoraTarget(module);
    const shape = shapes.get(`${module}.weight`);
    if (!target || !shape) throw new UserError(`adapter module ${module} has no base weight in this model`, { field: module });
    if (shape[0] !== p.outFeatures || shape[1] !== p.inFeatures) {
      throw new UserError(`adapter module ${module} is [${p.outFeatures}, ${p.inFeatures}], the base weight is [${shape.join(", ")}]`, {
        field: module,
      });
    }
    tensors.push(
      { name: `${target}.lora_a`, ne: [p.inFeatures, p.rank], type: GgmlType.F32, readRows: async () => p.a },
      { name: `${target}.lora_b`, ne: [p.rank, p.outFeatures], type: GgmlType.F32, readRows: async () => p.b },
    );
  }
  tensors.sort((a, b) => compareGgufTensorNames(a.name, b.name));
  // All rows at once: adapters are small, so each tensor is one read.
  for (const t of tensors) {
    const read = t.readRows;
    t.readRows = async (start, count) => (await read(0, 0)).subarray(start * t.ne[0]!, (start + count) * t.ne[0]!);
  }
  const metadata = new Map<string, GgufEntry>([
    ["general.architecture", gguf.str("gemma4")],
    ["general.type", gguf.str("adapter")],
    ["general.name", gguf.str(o.name ?? basename(o.out).replace(/\.gguf$/, ""))],
    ["adapter.type", gguf.str("lora")],
    ["adapter.lora.alpha", gguf.f32(ggufLoraAlpha(o.adapter))],
  ]);
  return writeGguf(o.out, { metadata, tensors, progress: o.progress, label: `adapter ${basename(o.out)}` });
}
