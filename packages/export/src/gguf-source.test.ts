// A GGUF file as a TensorSource: `readRows` along the HF first axis (1-D tensors: rows of one value)
// gives the matching slice of the whole dequantized tensor, for float and quantized types; 2-D tensors
// also say where their rows lie, and rows gathered there by positioned reads match.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectedTensors, FileRows, memoryTensorSource, parseGemma4Config, randomWeights } from "@owntune/model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGguf } from "./export-gguf.js";
import { openGgufTensorSource } from "./gguf-source.js";
import { syntheticTokenizer } from "./testing/fixtures.js";

/** Rows of 64 or 128 values, so Q8_0 blocks (32) apply to every matrix. */
const config = parseGemma4Config({
  vocab_size: 64,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 32,
  global_head_dim: 64,
  layer_types: ["sliding_attention", "full_attention"],
  sliding_window: 4,
  hidden_size_per_layer_input: 32,
  final_logit_softcapping: 30,
});
const dir = mkdtempSync(join(tmpdir(), "owntune-gguf-source-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  for (const mix of ["F32", "Q8_0"] as const) {
    await exportGguf({
      config,
      source: memoryTensorSource(config, randomWeights(config, 2)),
      tokenizer: syntheticTokenizer(64),
      mix,
      out: join(dir, `${mix}.gguf`),
    });
  }
});

describe.each(["F32", "Q8_0"] as const)("openGgufTensorSource (%s)", (mix) => {
  it("reads rows along the first HF axis as the matching slice of the whole tensor", async () => {
    const src = await openGgufTensorSource(join(dir, `${mix}.gguf`));
    for (const spec of expectedTensors(config)) {
      const whole = await src.read(spec.name);
      const rows = spec.shape[0]!;
      const row = spec.shape.length > 1 ? spec.shape[1]! : 1;
      const start = Math.floor(rows / 3);
      const count = Math.max(1, Math.floor(rows / 2));
      expect(Array.from(await src.readRows(spec.name, start, count)), spec.name).toEqual(
        Array.from(whole.subarray(start * row, (start + count) * row)),
      );
    }
    await expect(src.readRows("embed_tokens.weight", 60, 5)).rejects.toThrow("rows [60, 65) out of range for embed_tokens.weight [64, 64]");
  });

  it("says where each matrix's rows lie in the file (quantized rows dequantized as read), and rows gathered there match", async () => {
    const src = await openGgufTensorSource(join(dir, `${mix}.gguf`));
    for (const name of ["embed_tokens_per_layer.weight", "layers.0.mlp.down_proj.weight"]) {
      const range = src.fileRows!(name)!;
      const [rows, width] = src.shape(name) as [number, number];
      expect(range).toMatchObject({ rows, width, dtype: src.dtype!(name) === "F32" ? "F32" : "encoded" });
      const table = new FileRows(range);
      const ids = [3, rows - 1, 0, 3];
      const out = new Float32Array(ids.length * width);
      table.gather(ids, out);
      table.dispose();
      const whole = await src.read(name);
      expect(Array.from(out), `${name} (${src.dtype!(name)})`).toEqual(
        ids.flatMap((id) => Array.from(whole.subarray(id * width, (id + 1) * width))),
      );
    }
    expect(src.fileRows!("norm.weight")).toBeUndefined();
  });
});
