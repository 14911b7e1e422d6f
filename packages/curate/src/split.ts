// Split and weight, the step between dedup and packing: the kept examples in a seeded Fisher–Yates
// order, the first val_fraction of them held out, and each train example repeated by its input's
// mixing weight: floor(w) copies plus one more with probability frac(w), decided by (seed, row index).
// It works on row indices only (four bytes per example), so in-memory and merged runs share it.
import type { CurateConfig } from "./config.js";
import { SAMPLES_PER_STAGE } from "./counters.js";
import { shuffledIndices, uniform } from "@owntune/core";

/** Salts of each split's row-order seed (seed ^ salt) for packing. */
export const TRAIN_SALT = 0x7a11;
export const VAL_SALT = 0x7a12;

/** What the split needs of the kept examples, by rank (position in input order among the kept). */
export interface KeptView {
  count: number;
  /** Row index in input order. */
  id(rank: number): number;
  input(rank: number): number;
}

export interface SplitPlan {
  /** Ranks of the train examples, in shuffled order, each repeated as its weight says. */
  train: Uint32Array;
  /** Ranks of the validation examples, in shuffled order. */
  val: Uint32Array;
  /** Examples whose weight gave them no copy. */
  sampledOut: number;
  /** Ranks of the first few of them, in shuffled order (the report's samples). */
  sampledOutFirst: number[];
}

/** Examples held out for validation out of `n`: at least one (when there are two), never all. */
export function valCount(n: number, fraction: number): number {
  return fraction > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(fraction * n))) : 0;
}

export function splitAndWeight(kept: KeptView, cfg: CurateConfig, seed: number): SplitPlan {
  const n = kept.count;
  const order = shuffledIndices(n, seed);
  const nVal = valCount(n, cfg.val_fraction);
  const copies = new Uint32Array(n);
  let trainCount = 0;
  let valTotal = 0;
  const sampledOutFirst: number[] = [];
  let sampledOut = 0;
  for (let i = 0; i < n; i++) {
    const rank = order[i]!;
    const w = cfg.inputs[kept.input(rank)]!.weight;
    const whole = Math.floor(w);
    const c = whole + (uniform(seed, kept.id(rank), 0x5eed) < w - whole ? 1 : 0);
    copies[i] = c;
    if (c === 0) {
      sampledOut++;
      if (sampledOutFirst.length < SAMPLES_PER_STAGE) sampledOutFirst.push(rank);
    } else if (i < nVal) valTotal++;
    else trainCount += c;
  }
  const train = new Uint32Array(trainCount);
  const val = new Uint32Array(valTotal);
  let t = 0;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = copies[i]!;
    if (c === 0) continue;
    if (i < nVal) val[v++] = order[i]!;
    else for (let j = 0; j < c; j++) train[t++] = order[i]!;
  }
  return { train, val, sampledOut, sampledOutFirst };
}
