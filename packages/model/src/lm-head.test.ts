// The tied embedding: lookups across vocabulary tiles, full logits, and the tiled cross-entropy with its
// custom gradient, against float64 code written here from the formulas.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { fillNormal, seededRandom } from "./init-weights.js";
import { EmbeddingTable } from "./lm-head.js";
import { describeBackends, expectClose } from "./testing/check-model.js";
import { centralDiff, f64 } from "./testing/finite-diff.js";

const V = 50;
const H = 6;
const N = 9;
const E = fillNormal(new Float32Array(V * H), seededRandom(9, "E"), 0, 1);
const Hs = fillNormal(new Float32Array(N * H), seededRandom(9, "h"), 0, 2);
const targets = [3, 49, 0, 17, 17, 20, 21, 48, 5];
const weights = [1, 0, 2, 1, 1, 0.5, 0, 1, 1]; // zero rows must cost nothing and get zero gradient

/** Soft-capped logits of row-major h [n, H] in float64. */
function logits64(h: ArrayLike<number>, cap: number | null): Float64Array[] {
  return Array.from({ length: h.length / H }, (_, i) => {
    const z = new Float64Array(V);
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let k = 0; k < H; k++) s += h[i * H + k]! * E[v * H + k]!;
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

function nllSum64(h: ArrayLike<number>, cap: number | null): number {
  return logits64(h, cap).reduce((acc, z, i) => acc - weights[i]! * logSoftmaxAt(z, targets[i]!), 0);
}

describeBackends("EmbeddingTable", () => {
  let table: EmbeddingTable;
  let noCopy: EmbeddingTable;
  beforeAll(() => {
    table = new EmbeddingTable(E, V, H, { vocabChunk: 16, tokenBlock: 4 }); // tiles of 16, 16, 16, 2; blocks of 4 rows
    // gradient through Eᵀ only, and the head through short-lived tile copies (the large-table path)
    noCopy = new EmbeddingTable(E, V, H, { vocabChunk: 16, tokenBlock: 4, rowMajorCopyMaxBytes: 0, packedHeadMaxBytes: 0 });
  });
  afterAll(() => {
    table.dispose();
    noCopy.dispose();
  });

  it("looks up rows in request order across vocabulary tiles", () => {
    const ids = [49, 0, 17, 16, 15, 49, 32, 1];
    const got = table.lookup(ids);
    const want = ids.flatMap((id) => Array.from(E.subarray(id * H, (id + 1) * H)));
    expectClose("lookup vs E rows", got.dataSync(), want, 0, [ids.length, H]);
    got.dispose();
    expect(() => table.lookup([V])).toThrow(`token id ${V} outside the vocabulary [0, ${V})`);
  });

  for (const cap of [30, 2, null]) {
    it(`computes logits, target log-probs and the weighted NLL as float64 does (softcap ${cap})`, () => {
      const h = tf.tensor2d(Hs, [N, H]);
      const want = logits64(Hs, cap);
      const z = table.logits(h, cap);
      expectClose(`logits (cap ${cap})`, z.dataSync(), want.flatMap((r) => Array.from(r)), 2e-5, [N, V]);
      const z2 = noCopy.logits(h, cap);
      expectClose(`logits through tile copies (cap ${cap})`, z2.dataSync(), want.flatMap((r) => Array.from(r)), 2e-5, [N, V]);
      z2.dispose();
      const lp = table.targetLogprobs(h, targets.map((t, i) => (i === 6 ? -1 : t)), cap);
      expect(Number.isNaN(lp[6]!)).toBe(true);
      expectClose(`target log-probs (cap ${cap})`, lp.filter((_, i) => i !== 6), want.map((r, i) => logSoftmaxAt(r, targets[i]!)).filter((_, i) => i !== 6), 2e-5);
      const loss = table.nllSum(h, targets, weights, cap);
      expectClose(`weighted NLL (cap ${cap})`, loss.dataSync(), [nllSum64(Hs, cap)], 1e-4);
      tf.dispose([h, z, loss]);
    });

    it(`has a gradient equal to central finite differences, with or without the row-major copy of E and tile copies (softcap ${cap})`, () => {
      const p = f64(Hs);
      const fd = centralDiff((q) => 3 * nllSum64(q, cap), p, Array.from({ length: p.length }, (_, i) => i));
      for (const [label, t] of [["row-major copy", table], ["Eᵀ only", noCopy]] as const) {
        const h = tf.tensor2d(Hs, [N, H]);
        const g = tf.grad((x: tf.Tensor) => tf.mul(t.nllSum(x as tf.Tensor2D, targets, weights, cap), 3))(h);
        expectClose(`d nll / d h, ${label} (cap ${cap})`, g.dataSync(), fd, 2e-5, [N, H]);
        const gd = g.dataSync();
        for (const row of [1, 6]) expect(Array.from(gd.subarray(row * H, (row + 1) * H)).every((v) => v === 0)).toBe(true);
        tf.dispose([h, g]);
      }
    });
  }
});
