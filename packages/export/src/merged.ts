// The `merged/` export: the base model with its LoRA adapter folded in (W + scale·B·A), as a Hugging
// Face model folder (bf16 by default, as published checkpoints are; F32 on request) that our own
// loader, transformers and llama.cpp's converter read. Config, generation config and tokenizer files
// are copied. Each tensor is read, merged and written in blocks of rows, so no whole float32 tensor
// exists (E2B's per-layer table would be 9.4 GB). Reference: PEFT merge_and_unload + save_pretrained;
// spec/gemma4.md §4.
import { existsSync } from "node:fs";
import { copyFile, readFile } from "node:fs/promises";
import { join } from "node:path";
import { DTYPE_BYTES, numElements, withAtomicDir, writeFileAtomic, writeSafetensors, type FloatDtype, type Progress } from "@owntune/core";
import {
  configToJson,
  expectedTensors,
  planShards,
  shardFileName,
  SINGLE_WEIGHTS_FILE,
  TEXT_PREFIX,
  WEIGHTS_INDEX_FILE,
  type Gemma4Config,
  type TensorSource,
} from "@owntune/model";
import { mergedRowReader, type AdapterWeights } from "@owntune/lora";

/** Files copied from the base model folder when present. */
const COPIED_FILES = [
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "chat_template.jinja",
  "special_tokens_map.json",
  "tokenizer.model",
];
/** transformers' default max_shard_size ("5GB"). */
const MAX_SHARD_BYTES = 5_000_000_000;
/**
 * Float32 bytes of source rows read (and merged) at a time: bounds the export's memory whatever the
 * tensor size, while keeping reads large (a 262,144 × 1,536 embedding is 24 blocks).
 */
export const MERGED_BLOCK_BYTES = 64 * 2 ** 20;

export interface MergedExportOptions {
  baseDir: string;
  config: Gemma4Config;
  source: TensorSource;
  adapter?: AdapterWeights;
  outDir: string;
  dtype?: "bf16" | "f32";
  /** Float32 bytes of rows per read (MERGED_BLOCK_BYTES); small values exercise the block path in tests. */
  blockBytes?: number;
  progress?: Progress;
}

/**
 * Writes `outDir` (atomically: complete or absent). Text weights are written under the text-only
 * prefix `model.` (Gemma4ForCausalLM); config.json is copied when the base is text-only, else its
 * text part is written. At most one block of rows (`blockBytes` of float32) is held at a time.
 */
export async function exportMerged(o: MergedExportOptions): Promise<{ files: string[]; bytes: number }> {
  const dtype: FloatDtype = (o.dtype ?? "bf16") === "bf16" ? "BF16" : "F32";
  const specs = expectedTensors(o.config).map((spec) => ({ spec, bytes: numElements(spec.shape) * DTYPE_BYTES[dtype] }));
  const shards = planShards(specs, MAX_SHARD_BYTES);
  const bytes = specs.reduce((a, s) => a + s.bytes, 0);
  const files = await withAtomicDir(o.outDir, async (tmp) => {
    const written: string[] = [];
    const baseConfig = JSON.parse(await readFile(join(o.baseDir, "config.json"), "utf8")) as Record<string, unknown>;
    const textOnly = baseConfig.model_type === "gemma4_text";
    const config = textOnly
      ? { ...baseConfig, torch_dtype: dtype === "BF16" ? "bfloat16" : "float32" }
      : { ...configToJson(o.config), torch_dtype: dtype === "BF16" ? "bfloat16" : "float32" };
    await writeFileAtomic(join(tmp, "config.json"), JSON.stringify(config, null, 2) + "\n");
    written.push("config.json");
    for (const name of COPIED_FILES) {
      if (!existsSync(join(o.baseDir, name))) continue;
      await copyFile(join(o.baseDir, name), join(tmp, name));
      written.push(name);
    }
    o.progress?.start(bytes, "merged", "B");
    async function* blocks(spec: { name: string; shape: number[] }) {
      for await (const { values } of mergedRowBlocks(o.source, o.adapter, spec.name, spec.shape, o.blockBytes)) {
        o.progress?.increment(values.length * DTYPE_BYTES[dtype]);
        yield values;
      }
    }
    const weightMap: Record<string, string> = {};
    for (const [k, shard] of shards.entries()) {
      const file = shards.length === 1 ? SINGLE_WEIGHTS_FILE : shardFileName(k, shards.length);
      const tensors = shard.map(({ spec }) => ({ name: TEXT_PREFIX + spec.name, dtype, shape: spec.shape }));
      await writeSafetensors(join(tmp, file), tensors, (_t, i) => blocks(shard[i]!.spec), { metadata: { format: "pt" } });
      for (const t of tensors) weightMap[t.name] = file;
      written.push(file);
    }
    o.progress?.stop();
    if (shards.length > 1) {
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      await writeFileAtomic(
        join(tmp, WEIGHTS_INDEX_FILE),
        JSON.stringify({ metadata: { total_size: bytes }, weight_map: sorted }, null, 2) + "\n",
      );
      written.push(WEIGHTS_INDEX_FILE);
    }
    return written.sort();
  });
  return { files, bytes };
}

/**
 * One tensor's values, merged (W + scale·B·A) where `adapter` has a pair for it, in blocks of whole rows
 * along the first axis (a 1-D tensor's rows are single values) read with `readRows`, each at most
 * `blockBytes` of float32: how merged/ is written and how verify checks a GGUF's weights, never holding
 * a whole table.
 */
export async function* mergedRowBlocks(
  source: TensorSource,
  adapter: AdapterWeights | undefined,
  name: string,
  shape: readonly number[],
  blockBytes = MERGED_BLOCK_BYTES,
): AsyncGenerator<{ start: number; count: number; values: Float32Array }> {
  const read = mergedRowReader(adapter, name, (start, count) => source.readRows(name, start, count));
  const rows = shape[0]!;
  const block = Math.max(1, Math.floor(blockBytes / (4 * Math.max(1, numElements(shape.slice(1))))));
  for (let start = 0; start < rows; start += block) {
    const count = Math.min(block, rows - start);
    yield { start, count, values: await read(start, count) };
  }
}
