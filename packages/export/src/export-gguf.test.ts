// The exported GGUF read back by readers we did not write (@huggingface/gguf and node-llama-cpp's
// readGgufFileInfo): tensor names, dims and types as spec/gemma4.md §5.2 lists them for the tiny
// preset, every gemma4 key with its GGUF type, the tokenizer arrays, and the F32 data itself.
import { mkdtempSync, openSync, readFileSync, readSync, closeSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gguf as hfGguf } from "@huggingface/gguf";
import { UserError } from "@owntune/core";
import { parseGemma4Config } from "@owntune/model";
import { readGgufFileInfo } from "node-llama-cpp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGguf } from "./export-gguf.js";
import { gemmaTokenizer, tinyModel } from "./testing/fixtures.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tiny = tinyModel(1);
const f32 = join(dir, "tiny-F32.gguf");
const q4km = join(dir, "tiny-Q4_K_M.gguf");
let parsed: Awaited<ReturnType<typeof parseF32>>;
const parseF32 = () => hfGguf(f32, { allowLocalFile: true, typedMetadata: true });

beforeAll(async () => {
  const tokenizer = await gemmaTokenizer();
  await exportGguf({ config: tiny.config, source: tiny.source, tokenizer, mix: "F32", out: f32 });
  await exportGguf({ config: tiny.config, source: tiny.source, tokenizer, mix: "Q4_K_M", out: q4km, threads: 3 });
  parsed = await parseF32();
}, 120_000);

/**
 * The tiny preset's tensors as spec/gemma4.md §5.2 names them, with ggml dims: H=128, P=16, L=6,
 * sliding layers (0, 2, 4) heads 4×32 with 2 KV heads, full layers (1, 3, 5) 4×64 with 1 KV head
 * and no attn_v (k=v), layers 4 and 5 KV-shared (no attn_k/attn_v/attn_k_norm) with a 1024 MLP.
 */
function expectedTensors(): Record<string, number[]> {
  const H = 128,
    P = 16,
    L = 6,
    V = 262_144;
  const t: Record<string, number[]> = {
    "token_embd.weight": [H, V],
    "per_layer_token_embd.weight": [L * P, V],
    "per_layer_model_proj.weight": [H, L * P],
    "per_layer_proj_norm.weight": [P],
    "output_norm.weight": [H],
    "rope_freqs.weight": [32],
  };
  for (let i = 0; i < L; i++) {
    const full = i % 2 === 1;
    const d = full ? 64 : 32;
    const kv = full ? 1 : 2;
    const shared = i >= 4;
    const F = shared ? 1024 : 512;
    const b = `blk.${i}.`;
    Object.assign(t, {
      [`${b}attn_norm.weight`]: [H],
      [`${b}attn_q.weight`]: [H, 4 * d],
      [`${b}attn_output.weight`]: [4 * d, H],
      [`${b}attn_q_norm.weight`]: [d],
      [`${b}post_attention_norm.weight`]: [H],
      [`${b}ffn_norm.weight`]: [H],
      [`${b}ffn_gate.weight`]: [H, F],
      [`${b}ffn_up.weight`]: [H, F],
      [`${b}ffn_down.weight`]: [F, H],
      [`${b}post_ffw_norm.weight`]: [H],
      [`${b}inp_gate.weight`]: [H, P],
      [`${b}proj.weight`]: [P, H],
      [`${b}post_norm.weight`]: [H],
      [`${b}layer_output_scale.weight`]: [1],
    });
    if (!shared) {
      t[`${b}attn_k.weight`] = [H, kv * d];
      t[`${b}attn_k_norm.weight`] = [d];
      if (!full) t[`${b}attn_v.weight`] = [H, kv * d];
    }
  }
  return t;
}

describe("an exported F32 GGUF read by @huggingface/gguf", () => {
  it("holds exactly the tensors of spec §5.2 with their ggml dims, all F32", async () => {
    const { tensorInfos } = parsed;
    const got = Object.fromEntries(tensorInfos.map((t) => [t.name, t.shape.map(Number)]));
    expect(got).toEqual(expectedTensors());
    expect(new Set(tensorInfos.map((t) => t.dtype))).toEqual(new Set([0]));
  });

  it("writes every gemma4 key with the GGUF type llama.cpp reads", async () => {
    const m = parsed.typedMetadata as unknown as Record<string, { value: unknown; type: number; subType?: number }>;
    const U32 = 4,
      I32 = 5,
      F32 = 6,
      BOOL = 7,
      STR = 8,
      ARR = 9;
    const expected: Array<[string, number, unknown, number?]> = [
      ["general.architecture", STR, "gemma4"],
      ["general.file_type", U32, 0],
      ["general.quantization_version", U32, 2],
      ["gemma4.block_count", U32, 6],
      ["gemma4.context_length", U32, 4096],
      ["gemma4.embedding_length", U32, 128],
      ["gemma4.feed_forward_length", ARR, [512, 512, 512, 512, 1024, 1024], I32],
      ["gemma4.attention.head_count", U32, 4],
      ["gemma4.attention.head_count_kv", ARR, [2, 1, 2, 1, 2, 1], I32],
      ["gemma4.attention.key_length", U32, 64],
      ["gemma4.attention.value_length", U32, 64],
      ["gemma4.attention.key_length_swa", U32, 32],
      ["gemma4.attention.value_length_swa", U32, 32],
      ["gemma4.rope.dimension_count", U32, 64],
      ["gemma4.rope.dimension_count_swa", U32, 32],
      ["gemma4.rope.freq_base", F32, 1_000_000],
      ["gemma4.rope.freq_base_swa", F32, 10_000],
      ["gemma4.attention.sliding_window", U32, 16],
      ["gemma4.attention.sliding_window_pattern", ARR, [true, false, true, false, true, false], BOOL],
      ["gemma4.attention.shared_kv_layers", U32, 2],
      ["gemma4.embedding_length_per_layer_input", U32, 16],
      ["gemma4.final_logit_softcapping", F32, 30],
      ["tokenizer.ggml.model", STR, "gemma4"],
      ["tokenizer.ggml.bos_token_id", U32, 2],
      ["tokenizer.ggml.padding_token_id", U32, 0],
      ["tokenizer.ggml.add_bos_token", BOOL, true],
    ];
    for (const [key, type, value, subType] of expected) {
      expect(m[key]?.type, key).toBe(type);
      expect(m[key]?.value, key).toEqual(value);
      if (subType !== undefined) expect(m[key]?.subType, key).toBe(subType);
    }
    expect(Math.abs((m["gemma4.attention.layer_norm_rms_epsilon"]!.value as number) - 1e-6)).toBeLessThan(1e-12);
  });

  it("writes the tokenizer: 262,144 tokens (no <image_soft_token>), types, merges, chat template", async () => {
    const metadata = parsed.metadata as unknown as Record<string, unknown>;
    const tokens = metadata["tokenizer.ggml.tokens"] as string[];
    const types = metadata["tokenizer.ggml.token_type"] as number[];
    expect(tokens.length).toBe(262_144);
    expect(tokens.includes("<image_soft_token>")).toBe(false);
    expect([tokens[0], tokens[1], tokens[2], tokens[105], tokens[106]]).toEqual([
      "<pad>",
      "<eos>",
      "<bos>",
      "<start_of_turn>",
      "<end_of_turn>",
    ]);
    // control for HF special tokens, user-defined for non-special added ones (<mask>, <unused0>), byte for <0x00>.
    expect([types[1], types[106], types[4], types[6], types[238]]).toEqual([3, 3, 4, 4, 6]);
    expect((metadata["tokenizer.ggml.merges"] as string[]).length).toBeGreaterThan(500_000);
    expect(metadata["tokenizer.chat_template"]).toContain("<start_of_turn>");
  });

  it("stores each F32 tensor's values unchanged (HF row-major bytes)", async () => {
    const info = parsed;
    const fd = openSync(f32, "r");
    try {
      for (const [gguf, hf] of [
        ["blk.1.attn_q.weight", "layers.1.self_attn.q_proj.weight"],
        ["blk.3.layer_output_scale.weight", "layers.3.layer_scalar"],
        ["per_layer_model_proj.weight", "per_layer_model_projection.weight"],
      ] as const) {
        const t = info.tensorInfos.find((x) => x.name === gguf)!;
        const want = tiny.weights.get(hf)!;
        const buf = Buffer.alloc(want.byteLength);
        readSync(fd, buf, 0, buf.length, Number(info.tensorDataOffset + t.offset));
        expect(Buffer.compare(buf, Buffer.from(want.buffer, want.byteOffset, want.byteLength)), gguf).toBe(0);
      }
    } finally {
      closeSync(fd);
    }
  });
});

describe("an exported Q4_K_M GGUF read by node-llama-cpp", () => {
  it("names the architecture, file type and tensor types llama.cpp will load", async () => {
    const info = await readGgufFileInfo(q4km, { readTensorInfo: true, sourceType: "filesystem" });
    expect(info.metadata.general.architecture).toBe("gemma4");
    expect(info.metadata.general.file_type).toBe(15);
    const types = Object.fromEntries((info.fullTensorInfo ?? info.tensorInfo ?? []).map((t) => [t.name, t.ggmlType as number]));
    // Tied embeddings with rows of 128 and 96 (not multiples of 256): Q8_0. Rows of 128 in the
    // layers fall back from Q4_K to Q5_0; ffn_down rows of 512/1024 stay K-quants.
    expect(types["token_embd.weight"]).toBe(8);
    expect(types["per_layer_token_embd.weight"]).toBe(8);
    expect(types["blk.0.attn_q.weight"]).toBe(6);
    // use_more_bits over 6 layers: layers 2 and 5 get Q6_K.
    expect(types["blk.0.ffn_down.weight"]).toBe(12);
    expect(types["blk.2.ffn_down.weight"]).toBe(14);
    expect(types["per_layer_model_proj.weight"]).toBe(0);
    expect(types["blk.0.attn_norm.weight"]).toBe(0);
  });
});

describe("quantizing on threads", () => {
  it("writes the same bytes with 3 threads as with 1", async () => {
    const one = join(dir, "tiny-Q4_K_M-1.gguf");
    await exportGguf({
      config: tiny.config,
      source: tiny.source,
      tokenizer: await gemmaTokenizer(),
      mix: "Q4_K_M",
      out: one,
      name: "tiny-Q4_K_M",
      threads: 1,
    });
    const a = readFileSync(one);
    const b = readFileSync(q4km);
    expect(b.length).toBe(a.length);
    expect(Buffer.compare(a, b)).toBe(0);
  });
});

describe("export refuses configs llama.cpp would crash on", () => {
  it("rejects a KV-sharing order other than f−1 full, f−2 sliding as a user error", async () => {
    const c = parseGemma4Config({
      ...tiny.config,
      layer_types: ["sliding_attention", "full_attention", "full_attention", "sliding_attention", "sliding_attention", "full_attention"],
    });
    const e = await exportGguf({
      config: c,
      source: tiny.source,
      tokenizer: await gemmaTokenizer(),
      mix: "F32",
      out: join(dir, "bad.gguf"),
    }).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).message).toBe(
      "with num_kv_shared_layers=2, llama.cpp needs layer 3 (f−1) to be full_attention and layer 2 (f−2) sliding_attention, but they are sliding_attention and full_attention; llama.cpp would abort its whole process when creating a context",
    );
  });
});
