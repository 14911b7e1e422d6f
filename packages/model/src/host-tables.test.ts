// Compact host storage: chunked row tables (across chunk boundaries, f32 and bf16), rows gathered
// straight from a safetensors file (F32, F16, BF16), `readRows` of every TensorSource of this package,
// and tensors filled in place, against values decoded independently (the file's own readRows, roundToBf16).
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fillNormal, roundToBf16, seededRandom } from "@owntune/core";
import { openCheckpoint } from "./checkpoint.js";
import { ChunkedRows, filledTensor, FileRows } from "./host-tables.js";
import { randomWeights } from "./init-weights.js";
import { memoryTensorSource } from "./tensors.js";
import { microConfig, writeMicroWeights } from "./test-fixtures.js";
import { describeBackends, expectClose } from "./testing/check-model.js";

const ROWS = 23;
const WIDTH = 5;
const values = fillNormal(new Float32Array(ROWS * WIDTH), seededRandom(3, "table"), 0, 1);
const rowsOf = (src: Float32Array, ids: number[], scale = 1) =>
  ids.flatMap((id) => Array.from(src.subarray(id * WIDTH, (id + 1) * WIDTH), (v) => Math.fround(v * scale)));

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "owntune-host-tables-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("ChunkedRows", () => {
  // 4 rows per chunk (f32: 80 bytes; bf16: 40 bytes): 23 rows are 6 chunks, the last one partial.
  const ids = [0, 3, 4, 7, 8, 22, 21, 4, 3];
  for (const [dtype, chunkBytes, want] of [
    ["f32", 80, values],
    ["bf16", 40, roundToBf16(values)],
  ] as const) {
    it(`stores rows across chunk boundaries and gathers them back, scaled (${dtype})`, async () => {
      // Loaded in blocks of 3 rows (blocks are cut at chunk ends), and set again in one call spanning every chunk.
      const reads: Array<[number, number]> = [];
      const t = await ChunkedRows.load(
        async (start, count) => (reads.push([start, count]), values.slice(start * WIDTH, (start + count) * WIDTH)),
        ROWS,
        WIDTH,
        dtype,
        { chunkBytes, blockRows: 3 },
      );
      expect(t.rowsPerChunk).toBe(4);
      expect(t.chunkCount).toBe(6);
      expect(reads.every(([s, c]) => Math.floor(s / 4) === Math.floor((s + c - 1) / 4))).toBe(true);
      expect(reads.reduce((a, [, c]) => a + c, 0)).toBe(ROWS);
      const out = new Float32Array(ids.length * WIDTH);
      t.gather(ids, out, 2);
      expectClose(`gathered rows × 2 (${dtype})`, out, rowsOf(want, ids, 2), 0, [ids.length, WIDTH]);
      const u = new ChunkedRows(ROWS, WIDTH, dtype, chunkBytes);
      u.setRows(2, values.subarray(2 * WIDTH, 21 * WIDTH)); // rows 2..20: chunks 0–5 in one call
      const got = new Float32Array(19 * WIDTH);
      u.gather(
        Array.from({ length: 19 }, (_, i) => i + 2),
        got,
      );
      expectClose(`rows set across chunks (${dtype})`, got, want.subarray(2 * WIDTH, 21 * WIDTH), 0);
      expect(u.bytes).toBe(ROWS * WIDTH * (dtype === "bf16" ? 2 : 4));
      expect(() => t.gather([ROWS], out)).toThrow(`token id ${ROWS} outside the per-layer embedding table (${ROWS} rows)`);
      expect(() => u.setRows(20, values.subarray(0, 4 * WIDTH))).toThrow("rows [20, 24) outside [0, 23)");
    });
  }
});

describe("rows from the checkpoint file", () => {
  const config = microConfig();
  const name = "embed_tokens_per_layer.weight";
  for (const dtype of ["F32", "BF16", "F16"] as const) {
    it(`gathers ${dtype} rows by positioned reads, after the checkpoint is closed, as the checkpoint decodes them`, async () => {
      const dir = join(root, dtype);
      await mkdir(dir);
      await writeMicroWeights(join(dir, "model.safetensors"), config, { dtype });
      const cp = await openCheckpoint(dir, { config });
      const [rows, width] = cp.shape(name) as [number, number];
      const want = await cp.readRows(name, 0, rows);
      const range = cp.fileRows(name)!;
      expect(range).toMatchObject({ rows, width, dtype });
      expect(cp.fileRows("norm.weight")).toBeUndefined(); // 1-D: not a row table
      await cp.close();
      const t = new FileRows(range);
      const ids = [0, rows - 1, 7, 7, 30];
      const out = new Float32Array(ids.length * width);
      t.gather(ids, out, 0.5);
      const expected = ids.flatMap((id) => Array.from(want.subarray(id * width, (id + 1) * width), (v) => Math.fround(v * 0.5)));
      expectClose(`file rows (${dtype})`, out, expected, 0, [ids.length, width]);
      expect(t.bytes).toBe(0);
      expect(() => t.gather([rows], out)).toThrow(`token id ${rows} outside the per-layer embedding table (${rows} rows)`);
      t.dispose();
      expect(() => t.gather([0], out)).toThrow("row table is closed");
    });
  }
});

describe("TensorSource.readRows", () => {
  it("reads rows along the first axis from weights in memory, as views, and refuses ranges outside", async () => {
    const config = microConfig();
    const weights = randomWeights(config, 2);
    const src = memoryTensorSource(config, weights);
    const e = weights.get("embed_tokens.weight")!;
    const H = config.hidden_size;
    expect(Array.from(await src.readRows("embed_tokens.weight", 5, 3))).toEqual(Array.from(e.subarray(5 * H, 8 * H)));
    expect(Array.from(await src.readRows("norm.weight", 2, 3))).toEqual(Array.from(weights.get("norm.weight")!.subarray(2, 5))); // 1-D: rows of one value
    await expect(src.readRows("embed_tokens.weight", config.vocab_size - 1, 2)).rejects.toThrow(
      `rows [${config.vocab_size - 1}, ${config.vocab_size + 1}) out of range for embed_tokens.weight`,
    );
  });
});

describeBackends("filledTensor", () => {
  it("makes a float32 tensor whose values the callback writes", () => {
    const t = filledTensor<tf.Rank.R2>([3, 4], (dst) => dst.forEach((_, i) => (dst[i] = i * 0.5)));
    expect(t.shape).toEqual([3, 4]);
    expect(Array.from(t.dataSync())).toEqual(Array.from({ length: 12 }, (_, i) => i * 0.5));
    const before = tf.memory().numTensors;
    t.dispose();
    expect(tf.memory().numTensors).toBe(before - 1);
  });
});
