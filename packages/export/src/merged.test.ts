// merged/ export streamed in blocks of rows: with a block far smaller than the embedding tables, every
// tensor is read only through `readRows` (never whole) and comes out as the whole-tensor merge
// W + scale·B·A (lora's mergeLora on the full matrix) for adapter targets, and unchanged otherwise.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mergeLora, randomAdapter } from "@owntune/lora";
import { roundToBf16 } from "@owntune/core";
import {
  configToJson,
  expectedTensors,
  memoryTensorSource,
  openCheckpoint,
  parseGemma4Config,
  randomWeights,
  type TensorSource,
} from "@owntune/model";
import { afterAll, describe, expect, it } from "vitest";
import { exportMerged } from "./merged.js";

const config = parseGemma4Config({
  vocab_size: 96,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  global_head_dim: 16,
  layer_types: ["sliding_attention", "full_attention"],
  sliding_window: 4,
  hidden_size_per_layer_input: 4,
  final_logit_softcapping: 30,
});
const root = mkdtempSync(join(tmpdir(), "owntune-merged-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("exportMerged", () => {
  for (const dtype of ["f32", "bf16"] as const) {
    it(`reads every 2-D tensor in row blocks below the block size and writes the whole-tensor merge (${dtype})`, async () => {
      const weights = randomWeights(config, 4);
      const adapter = randomAdapter(config, { rank: 2, seed: 3 });
      const inner = memoryTensorSource(config, weights);
      const reads: Array<{ name: string; values: number }> = [];
      const wholeReads: string[] = [];
      const source: TensorSource = {
        ...inner,
        read: (name) => (wholeReads.push(name), inner.read(name)),
        readRows: async (name, start, count) => {
          const rows = await inner.readRows(name, start, count);
          reads.push({ name, values: rows.length });
          return rows;
        },
      };
      const baseDir = join(root, `base-${dtype}`);
      const outDir = join(root, `out-${dtype}`);
      rmSync(baseDir, { recursive: true, force: true });
      mkdirSync(baseDir);
      writeFileSync(join(baseDir, "config.json"), JSON.stringify(configToJson(config)));
      const blockBytes = 512; // 128 float32 values: the 96 × 16 embedding takes 12 blocks, the 96 × 8 per-layer table 6
      await exportMerged({ baseDir, config, source, adapter, outDir, dtype, blockBytes });

      expect(wholeReads.filter((n) => inner.shape(n).length > 1)).toEqual([]);
      expect(Math.max(...reads.map((r) => r.values))).toBeLessThanOrEqual(blockBytes / 4);
      expect(reads.filter((r) => r.name === "embed_tokens_per_layer.weight").length).toBe(6);
      const cp = await openCheckpoint(outDir, { config });
      try {
        let merged = 0;
        for (const spec of expectedTensors(config)) {
          const pair = adapter.pairs.get(spec.name.replace(/\.weight$/, ""));
          const whole = pair ? mergeLora(weights.get(spec.name)!, pair, adapter.scale) : weights.get(spec.name)!;
          const want = dtype === "bf16" ? roundToBf16(whole) : whole;
          const got = await cp.read(spec.name);
          expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), spec.name).toBe(true);
          if (pair) merged++;
        }
        expect(merged).toBe(adapter.pairs.size);
      } finally {
        await cp.close();
      }
    });
  }
});
