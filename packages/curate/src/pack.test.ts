// Packing invariants: no token lost or duplicated, positions restart per document, segments number
// documents, masks travel with their tokens, rows never overflow, and BFD against a brute-force bound.
import { describe, expect, it } from "vitest";
import { mulberry32 } from "@owntune/core";
import { bestFitDecreasing, packingEfficiency, planRows, planToRows, type PackedRow, type PackItem, type PlanOptions } from "./pack.js";

function items(n: number, maxLen: number, seed: number): PackItem[] {
  const rand = mulberry32(seed);
  let next = 1;
  return Array.from({ length: n }, () => {
    const len = 1 + Math.floor(rand() * maxLen);
    const ids = Int32Array.from({ length: len }, () => next++); // every token id unique
    const mask = Uint8Array.from({ length: len }, (_, t) => (t > 0 && rand() < 0.6 ? 1 : 0));
    return { ids, mask };
  });
}

/** Rows as curate's pipeline makes them: a plan from the lengths, then the rows of that plan. */
function packRows(docs: readonly PackItem[], seqLen: number, padId: number, packing: boolean, options: PlanOptions = {}): PackedRow[] {
  const plan = planRows(
    Int32Array.from(docs, (d) => d.ids.length),
    seqLen,
    packing,
    options,
  );
  return [...planToRows(plan, (i) => docs[i]!, seqLen, padId)];
}

describe("packing", () => {
  const seqLen = 128;
  const docs = items(300, 100, 11);
  const rows = packRows(docs, seqLen, 0, true, { shuffleSeed: 3 });

  it("loses and duplicates no token, and carries each token's mask", () => {
    const seen = new Map<number, number>();
    for (const r of rows) for (let t = 0; t < seqLen; t++) if (r.segment_ids[t] !== 0) seen.set(r.input_ids[t]!, r.loss_mask[t]!);
    const total = docs.reduce((a, d) => a + d.ids.length, 0);
    expect(seen.size).toBe(total);
    for (const d of docs) d.ids.forEach((id, t) => expect(seen.get(id)).toBe(d.mask[t]));
  });

  it("restarts position_ids at each document and numbers segments 1, 2, … with padding 0", () => {
    for (const r of rows) {
      let seg = 0;
      let pos = 0;
      for (let t = 0; t < seqLen; t++) {
        const s = r.segment_ids[t]!;
        if (s === 0) {
          expect(r.loss_mask[t]).toBe(0);
          expect(r.input_ids[t]).toBe(0);
          continue;
        }
        if (s !== seg) {
          expect(s).toBe(seg + 1);
          seg = s;
          pos = 0;
        }
        expect(r.position_ids[t]).toBe(pos++);
      }
      // Padding only at the end.
      const firstPad = r.segment_ids.indexOf(0);
      if (firstPad >= 0) expect(r.segment_ids.subarray(firstPad).every((s) => s === 0)).toBe(true);
    }
  });

  it("keeps every document whole and in its original token order", () => {
    const rowOf = new Map<number, number>();
    rows.forEach((r, i) => r.input_ids.forEach((id, t) => r.segment_ids[t] && rowOf.set(id, i)));
    for (const d of docs) expect(new Set(Array.from(d.ids, (id) => rowOf.get(id))).size).toBe(1);
  });

  it("uses no more rows than first-fit-decreasing and at least the volume bound", () => {
    const lengths = docs.map((d) => d.ids.length);
    const total = lengths.reduce((a, b) => a + b, 0);
    // First-fit-decreasing, written the obvious way, as a reference.
    const ffd: number[] = [];
    for (const len of [...lengths].sort((a, b) => b - a)) {
      const i = ffd.findIndex((used) => used + len <= seqLen);
      if (i >= 0) ffd[i]! += len;
      else ffd.push(len);
    }
    const bins = bestFitDecreasing(lengths, seqLen);
    expect(bins.length).toBeGreaterThanOrEqual(Math.ceil(total / seqLen));
    expect(bins.length).toBeLessThanOrEqual(ffd.length);
    console.log(
      `BFD: ${bins.length} rows, volume bound ${Math.ceil(total / seqLen)}, efficiency ${(100 * packingEfficiency(rows, seqLen)).toFixed(1)}%`,
    );
  });

  it("shuffles whole rows with a seed, and packs each window of examples on its own", () => {
    const key = (r: PackedRow) => Array.from(r.input_ids).join(",");
    const unshuffled = packRows(docs, seqLen, 0, true);
    expect(rows.map(key).sort()).toEqual(unshuffled.map(key).sort());
    expect(rows.map(key)).not.toEqual(unshuffled.map(key));
    const window = 64;
    const plan = planRows(
      Int32Array.from(docs, (d) => d.ids.length),
      seqLen,
      true,
      { shuffleSeed: 3, window },
    );
    expect(Array.from(plan.items).sort((a, b) => a - b)).toEqual(docs.map((_, i) => i));
    for (let r = 0; r + 1 < plan.rowStart.length; r++) {
      const its = Array.from(plan.items.subarray(plan.rowStart[r]!, plan.rowStart[r + 1]!));
      expect(new Set(its.map((i) => Math.floor(i / window))).size).toBe(1);
    }
  });

  it("puts one example per row without packing", () => {
    const padded = packRows(docs.slice(0, 5), seqLen, 7, false);
    expect(padded.length).toBe(5);
    expect(padded[0]!.input_ids[docs[0]!.ids.length]).toBe(7);
    expect(padded.every((r) => r.documents === 1)).toBe(true);
  });
});
