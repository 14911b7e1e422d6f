// The tied embedding: lookups across vocabulary tiles, full logits, and the tiled cross-entropy with its
// custom gradient, against float64 code written here from the formulas.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { fillNormal, roundToBf16, seededRandom } from "@owntune/core";
import { EmbeddingTable } from "./lm-head.js";
import { describeBackends, expectClose } from "./testing/check-model.js";
import { centralDiff, f64 } from "./testing/finite-diff.js";

const V = 50;
const H = 6;
const N = 9;
const E = fillNormal(new Float32Array(V * H), seededRandom(9, "E"), 0, 1);
const E16 = roundToBf16(E); // what a bf16 table holds
const Hs = fillNormal(new Float32Array(N * H), seededRandom(9, "h"), 0, 2);
const targets = [3, 49, 0, 17, 17, 20, 21, 48, 5];
const weights = [1, 0, 2, 1, 1, 0.5, 0, 1, 1]; // zero rows must cost nothing and get zero gradient

/** Soft-capped logits of row-major h [n, H] in float64, under embedding `e`. */
function logits64(h: ArrayLike<number>, cap: number | null, e: Float32Array = E): Float64Array[] {
  return Array.from({ length: h.length / H }, (_, i) => {
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let k = 0; k < H; k++) s += h[i * H + k]! * e[v * H + k]!;
      z[v] = cap === null ? s : cap * Math.tanh(s / cap);
    }
    return z;
  });
}

function logSoftmaxAt(z: Float64Array, t: number): number {
  const m = Math.max(...z);
  let s = 0;
  for (const v of z) s += Math.exp(v - m);
  return z[t]! - m - Math.log(s);
}

function nllSum64(h: ArrayLike<number>, cap: number | null, e: Float32Array = E): number {
  return logits64(h, cap, e).reduce((acc, z, i) => acc - weights[i]! * logSoftmaxAt(z, targets[i]!), 0);
}

describeBackends("EmbeddingTable", () => {
  let table: EmbeddingTable;
  let noCopy: EmbeddingTable;
  let bf16: EmbeddingTable;
  beforeAll(async () => {
    table = new EmbeddingTable(E, V, H, { vocabChunk: 16, tokenBlock: 4 }); // tiles of 16, 16, 16, 2; blocks of 4 rows
    // the large-table path: float32 tiles on the host, each uploaded per use; gradient through Eᵀ only
    noCopy = new EmbeddingTable(E, V, H, { vocabChunk: 16, tokenBlock: 4, storage: "f32" });
    // bf16 tiles on the host, widened per use, filled as the loader does (rows read tile by tile)
    bf16 = await EmbeddingTable.load(async (start, count) => E.slice(start * H, (start + count) * H), V, H, {
      vocabChunk: 16,
      tokenBlock: 4,
      storage: "bf16",
    });
  });
  afterAll(() => {
    table.dispose();
    noCopy.dispose();
    bf16.dispose();
  });

  it("looks up rows in request order across vocabulary tiles", () => {
    const ids = [49, 0, 17, 16, 15, 49, 32, 1];
    for (const [label, t, e] of [
      ["device", table, E],
      ["host f32", noCopy, E],
      ["host bf16", bf16, E16],
    ] as const) {
      const got = t.lookup(ids);
      const want = ids.flatMap((id) => Array.from(e.subarray(id * H, (id + 1) * H)));
      expectClose(`lookup vs E rows (${label})`, got.dataSync(), want, 0, [ids.length, H]);
      got.dispose();
      expect(() => t.lookup([V])).toThrow(`token id ${V} outside the vocabulary [0, ${V})`);
    }
    expect(bf16.bytes).toBe(2 * V * H);
  });

  for (const cap of [30, 2, null]) {
    it(`computes logits, target log-probs and the weighted NLL as float64 does (softcap ${cap})`, () => {
      const h = tf.tensor2d(Hs, [N, H]);
      // Host tables: f32 tiles give the float64 figures of E; bf16 tiles those of E rounded to bf16.
      for (const [label, t, e] of [
        ["device", table, E],
        ["host f32 tiles", noCopy, E],
        ["host bf16 tiles", bf16, E16],
      ] as const) {
        const want = logits64(Hs, cap, e);
        const z = t.logits(h, cap);
        expectClose(
          `logits, ${label} (cap ${cap})`,
          z.dataSync(),
          want.flatMap((r) => Array.from(r)),
          2e-5,
          [N, V],
        );
        z.dispose();
        const lp = t.targetLogprobs(
          h,
          targets.map((x, i) => (i === 6 ? -1 : x)),
          cap,
        );
        expect(Number.isNaN(lp[6]!)).toBe(true);
        expectClose(
          `target log-probs, ${label} (cap ${cap})`,
          lp.filter((_, i) => i !== 6),
          want.map((r, i) => logSoftmaxAt(r, targets[i]!)).filter((_, i) => i !== 6),
          2e-5,
        );
        const loss = t.nllSum(h, targets, weights, cap);
        expectClose(`weighted NLL, ${label} (cap ${cap})`, loss.dataSync(), [nllSum64(Hs, cap, e)], 1e-4);
        loss.dispose();
      }
      h.dispose();
    });

    it(`has a gradient equal to central finite differences, with or without the row-major copy of E, from host f32 or bf16 tiles (softcap ${cap})`, () => {
      const p = f64(Hs);
      const all = Array.from({ length: p.length }, (_, i) => i);
      const fd = centralDiff((q) => 3 * nllSum64(q, cap), p, all);
      const fd16 = centralDiff((q) => 3 * nllSum64(q, cap, E16), p, all);
      for (const [label, t, want] of [
        ["row-major copy", table, fd],
        ["Eᵀ only, host f32 tiles", noCopy, fd],
        ["host bf16 tiles", bf16, fd16],
      ] as const) {
        const h = tf.tensor2d(Hs, [N, H]);
        const g = tf.grad((x: tf.Tensor) => tf.mul(t.nllSum(x as tf.Tensor2D, targets, weights, cap), 3))(h);
        expectClose(`d nll / d h, ${label} (cap ${cap})`, g.dataSync(), want, 2e-5, [N, H]);
        const gd = g.dataSync();
        for (const row of [1, 6]) expect(Array.from(gd.subarray(row * H, (row + 1) * H)).every((v) => v === 0)).toBe(true);
        tf.dispose([h, g]);
      }
    });
  }
});
