// The mixes against llama.cpp itself: a micro Gemma 4 model exported as F32, quantized by
// llama_model_quantize (libllama through FFI), must give the same type and the same bytes for every
// tensor as our direct export of each mix.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf as hfGguf } from "@huggingface/gguf";
import { memoryTensorSource, parseGemma4Config, randomWeights } from "@owntune/model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGguf } from "./export-gguf.js";
import { readGgufHeader, readGgufTensorBytes } from "./gguf-reader.js";
import { mixFileType, useMoreBits, type QuantMix } from "./quant-mix.js";
import { llamaModelQuantize } from "./testing/llama-quantize.js";
import { syntheticTokenizer } from "./testing/fixtures.js";

const S = "sliding_attention" as const;
const F = "full_attention" as const;

/**
 * 16 layers (3 sliding + 1 full, ×4), the last 8 sharing KV (sources: 6 sliding = f−2, 7 full =
 * f−1), so only layers 0–7 have attn_v: llama.cpp's attn_v "more bits" rule counts those 8
 * (layers 0, 3, 6, 7), not the 16 layer indices (0, 1, 4, 7). Rows of 256 so K-quants apply.
 */
const micro = parseGemma4Config({
  vocab_size: 512,
  hidden_size: 256,
  intermediate_size: 512,
  num_hidden_layers: 16,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 64,
  global_head_dim: 128,
  layer_types: Array.from({ length: 16 }, (_, i) => (i % 4 === 3 ? F : S)),
  sliding_window: 8,
  num_kv_shared_layers: 8,
  hidden_size_per_layer_input: 32,
  use_double_wide_mlp: true,
  final_logit_softcapping: 30,
  max_position_embeddings: 1024,
});

let dir: string;
let f32Path: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "owntune-mix-"));
  f32Path = join(dir, "micro-F32.gguf");
  await exportGguf({
    config: micro,
    source: memoryTensorSource(micro, randomWeights(micro, 3)),
    tokenizer: syntheticTokenizer(512),
    mix: "F32",
    out: f32Path,
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("use_more_bits", () => {
  it("picks the first and last eighth and every third layer between, as llama-quantize documents for 16 and 32", () => {
    const pick = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
    expect(pick(16)).toEqual([0, 1, 4, 7, 10, 13, 14, 15]);
    expect(pick(32)).toEqual([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  });
});

describe.each(["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0"] as const)("%s", (mix: QuantMix) => {
  it("gives every tensor llama-quantize's type and bytes", { timeout: 60_000 }, async () => {
    const refPath = join(dir, `ref-${mix}.gguf`);
    const oursPath = join(dir, `ours-${mix}.gguf`);
    llamaModelQuantize(f32Path, refPath, mixFileType(mix));
    await exportGguf({
      config: micro,
      source: memoryTensorSource(micro, randomWeights(micro, 3)),
      tokenizer: syntheticTokenizer(512),
      mix,
      out: oursPath,
    });
    const ref = await hfGguf(refPath, { allowLocalFile: true });
    const ours = await hfGguf(oursPath, { allowLocalFile: true });
    const refTypes = Object.fromEntries(ref.tensorInfos.map((t) => [t.name, t.dtype]));
    const ourTypes = Object.fromEntries(ours.tensorInfos.map((t) => [t.name, t.dtype]));
    expect(ourTypes).toEqual(refTypes);
    expect(ours.tensorInfos.map((t) => t.name)).toEqual(ref.tensorInfos.map((t) => t.name));
    const fileType = (m: object) => (m as Record<string, unknown>)["general.file_type"];
    expect(fileType(ours.metadata)).toBe(fileType(ref.metadata));
    const refHeader = await readGgufHeader(refPath);
    const ourHeader = await readGgufHeader(oursPath);
    const differing: string[] = [];
    for (const t of ourHeader.tensors) {
      const a = await readGgufTensorBytes(ourHeader, t.name);
      const b = await readGgufTensorBytes(refHeader, t.name);
      if (Buffer.compare(Buffer.from(a), Buffer.from(b)) !== 0) differing.push(t.name);
    }
    expect(differing, `tensors whose bytes differ from llama-quantize's`).toEqual([]);
  });
});

describe("attn_v in Q4_K_M with KV-shared layers", () => {
  it(
    "gives more bits by position among the 8 attn_v tensors present (layers 0, 3, 6, 7), as llama-quantize does",
    { timeout: 60_000 },
    async () => {
      const refPath = join(dir, "ref-Q4_K_M.gguf");
      if (!existsSync(refPath)) llamaModelQuantize(f32Path, refPath, mixFileType("Q4_K_M"));
      const ref = await hfGguf(refPath, { allowLocalFile: true });
      const attnV = ref.tensorInfos.filter((t) => t.name.endsWith("attn_v.weight"));
      expect(attnV.map((t) => t.name)).toEqual(Array.from({ length: 8 }, (_, i) => `blk.${i}.attn_v.weight`));
      const q6k = attnV.filter((t) => t.dtype === 14).map((t) => t.name);
      expect(q6k).toEqual(["blk.0.attn_v.weight", "blk.3.attn_v.weight", "blk.6.attn_v.weight", "blk.7.attn_v.weight"]);
    },
  );
});
