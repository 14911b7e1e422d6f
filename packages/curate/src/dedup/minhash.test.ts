// MinHash against exact Jaccard (Broder 1997: the estimate is a mean of k Bernoulli(J) draws, so its
// standard error is sqrt(J(1−J)/k)); LSH parameters against the closed-form S-curve integrals;
// near-duplicate recall and precision on a generated set with known duplicates.
import { describe, expect, it } from "vitest";
import { mulberry32 } from "@owntune/core";
import { buildContaminationIndex, isContaminated } from "./decontaminate.js";
import { exactKey } from "./exact.js";
import {
  bandKeys,
  candidateProbability,
  estimateJaccard,
  exactJaccard,
  LshClusters,
  lshParams,
  minhashSignature,
  permutationSeeds,
  shingleHashes,
} from "./minhash.js";

const VOCAB = Array.from({ length: 2000 }, (_, i) => `w${i.toString(36)}`);
function randomDoc(rand: () => number, n: number): string[] {
  return Array.from({ length: n }, () => VOCAB[Math.floor(rand() * VOCAB.length)]!);
}
/** Replaces a share of words at random positions: a near-duplicate with a controlled edit rate. */
function mutate(words: string[], rate: number, rand: () => number): string[] {
  return words.map((w) => (rand() < rate ? VOCAB[Math.floor(rand() * VOCAB.length)]! : w));
}

describe("MinHash estimates", () => {
  it("agree with exact Jaccard within 4 standard errors over many pairs", () => {
    const rand = mulberry32(7);
    const k = 256;
    const seeds = permutationSeeds(k, 1);
    let worst = { z: 0, j: 0, est: 0 };
    let sumErr = 0;
    const pairs = 60;
    for (let p = 0; p < pairs; p++) {
      const a = randomDoc(rand, 300);
      const b = mutate(a, (p / pairs) * 0.5, rand);
      const sa = shingleHashes(a.join(" "), "word", 3);
      const sb = shingleHashes(b.join(" "), "word", 3);
      const j = exactJaccard(sa, sb);
      const est = estimateJaccard(minhashSignature(sa, seeds), minhashSignature(sb, seeds));
      const se = Math.sqrt(Math.max(j * (1 - j), 1e-4) / k);
      const z = Math.abs(est - j) / se;
      sumErr += est - j;
      if (z > worst.z) worst = { z, j, est };
    }
    console.log(
      `MinHash k=${k}: worst |est−J| = ${worst.z.toFixed(2)} σ (J=${worst.j.toFixed(3)}, est=${worst.est.toFixed(3)}); mean bias ${(sumErr / pairs).toFixed(4)}`,
    );
    expect(worst.z).toBeLessThan(4);
    expect(Math.abs(sumErr / pairs)).toBeLessThan(0.01);
  });

  it("gives identical signatures for texts differing only in case and punctuation", () => {
    const seeds = permutationSeeds(64, 0);
    const a = minhashSignature(shingleHashes("The cat sat on the mat, happily.", "word", 2), seeds);
    const b = minhashSignature(shingleHashes("the CAT sat on the mat happily", "word", 2), seeds);
    expect(estimateJaccard(a, b)).toBe(1);
  });

  it("supports character n-grams", () => {
    const s = shingleHashes("abcdef", "char", 3); // abc bcd cde def
    expect(s.length).toBe(4);
  });
});

describe("LSH bands and rows", () => {
  // ∫_0^t 1 − (1 − s^r)^b ds in closed form, (1 − s^r)^b = Σ_k C(b,k)(−1)^k s^{rk}, summed exactly in
  // BigInt fixed point (the alternating terms reach 1e76, so doubles would cancel catastrophically).
  const SCALE = 10n ** 120n;
  function fpArea(t: [bigint, bigint], b: number, r: number): number {
    const [p, q] = t;
    let sum = 0n;
    let c = 1n;
    for (let k = 0; k <= b; k++) {
      const n = BigInt(r * k + 1);
      const term = (c * SCALE * p ** n) / (q ** n * n);
      sum += k % 2 === 0 ? term : -term;
      c = (c * BigInt(b - k)) / BigInt(k + 1);
    }
    return Number((((SCALE * p) / q - sum) * 10n ** 12n) / SCALE) / 1e12;
  }
  function bestByClosedForm(threshold: number, numPerm: number) {
    const t: [bigint, bigint] = [BigInt(Math.round(threshold * 100)), 100n];
    let best = { bands: 0, rows: 0, err: Infinity };
    for (let b = 1; b <= numPerm; b++)
      for (let r = 1; r * b <= numPerm; r++) {
        const below = fpArea(t, b, r);
        const fn = 1 - threshold - (fpArea([1n, 1n], b, r) - below);
        const err = 0.5 * below + 0.5 * fn;
        if (err < best.err - 1e-9) best = { bands: b, rows: r, err };
      }
    return { bands: best.bands, rows: best.rows };
  }
  it.each([
    [0.5, 64],
    [0.8, 112],
    [0.9, 48],
  ])("minimizes false-positive + false-negative area at threshold %s with %s permutations", (t, k) => {
    expect(lshParams(t, k)).toEqual(bestByClosedForm(t, k));
  });
  it("puts the S-curve's steepest rise near the threshold", () => {
    const { bands, rows } = lshParams(0.8, 112);
    expect(candidateProbability(0.95, bands, rows)).toBeGreaterThan(0.99);
    expect(candidateProbability(0.5, bands, rows)).toBeLessThan(0.05);
  });
});

describe("near-duplicate clustering", () => {
  it("finds planted near-duplicates with high recall and precision, keeping the first of each cluster", () => {
    const rand = mulberry32(3);
    const numPerm = 112;
    const seeds = permutationSeeds(numPerm, 0);
    const { bands, rows } = lshParams(0.8, numPerm);
    const docs: Array<{ words: string[]; origin: number }> = [];
    for (let i = 0; i < 200; i++) docs.push({ words: randomDoc(rand, 200), origin: i });
    // 100 near-copies (0.5% of words changed: Jaccard of 5-grams ≈ 0.9–1) of random originals.
    for (let i = 0; i < 100; i++) {
      const o = Math.floor(rand() * 200);
      docs.push({ words: mutate(docs[o]!.words, 0.005, rand), origin: o });
    }
    const lsh = new LshClusters(bands, rows);
    const shingles = docs.map((d) => shingleHashes(d.words.join(" "), "word", 5));
    docs.forEach((_, i) => lsh.add(i, bandKeys(minhashSignature(shingles[i]!, seeds), bands, rows)));
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < docs.length; i++) {
      const isDup = i >= 200; // every copy comes after its original
      const dropped = !lsh.isKept(i);
      if (dropped && isDup) tp++;
      else if (dropped) fp++;
      else if (isDup) {
        // Counted as a miss where the S-curve promises ≥ 0.95 (J ≥ 0.9 at b=9, r=12).
        if (exactJaccard(shingles[i]!, shingles[docs[i]!.origin]!) >= 0.9) fn++;
      }
    }
    const recall = tp / (tp + fn);
    const precision = tp / Math.max(1, tp + fp);
    console.log(
      `near-dedup: recall ${recall.toFixed(3)}, precision ${precision.toFixed(3)} (tp ${tp}, fp ${fp}, fn ${fn}; b=${bands}, r=${rows})`,
    );
    expect(recall).toBeGreaterThan(0.95);
    expect(precision).toBe(1);
    for (let i = 0; i < 200; i++) expect(lsh.isKept(i)).toBe(true);
  });
});

describe("exact dedup and decontamination", () => {
  it("keys texts equal up to case and whitespace the same", () => {
    expect(exactKey("Hello   World\n")).toBe(exactKey("hello world"));
    expect(exactKey("Hello World!")).not.toBe(exactKey("Hello World"));
  });
  it("flags a training text sharing a 13-gram with an evaluation text, and not one sharing 12", () => {
    const evalText = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    const index = buildContaminationIndex([evalText], 13);
    expect(isContaminated("prefix words then One two three four five six seven eight nine ten eleven twelve thirteen!", index, 13)).toBe(
      true,
    );
    expect(isContaminated("prefix one two three four five six seven eight nine ten eleven twelve and more", index, 13)).toBe(false);
  });
});
