// Hybrid KV cache for generation: sliding layers keep a window-sized buffer (the last W keys; a query at
// position p needs p−W+1 … p), full layers keep every key, KV-shared layers own nothing and read their
// source layer's keys of the same step. Reference: spec/gemma4.md §3.5 (window), §3.6 (sharing).
import * as tf from "@tensorflow/tfjs";
import type { Gemma4Config, LayerSpec } from "./config.js";
import { layerSpecs } from "./config.js";

/**
 * Where each key (or query) sits: stream index (causality), RoPE position (the sliding window) and
 * document (packed rows). `index` is shared by all batch rows; `position` and `segment` are [B·n].
 */
export interface TokenMeta {
  index: Int32Array;
  position: Int32Array;
  segment: Int32Array;
}

/** The keys and values one attention layer reads: kᵀ [B·Nkv, d, S], v [B·Nkv, S, d], and where each key sits. */
export interface KvEntry {
  kT: tf.Tensor3D;
  v: tf.Tensor3D;
  keys: TokenMeta;
}

/** What a forward pass asks of its K/V storage; `put` returns everything the layer attends to this step. */
export interface KvStore {
  put(layer: LayerSpec, fresh: KvEntry, batch: number): KvEntry;
  /** The entry a layer put during this step (for KV-shared layers). */
  get(layer: number): KvEntry;
}

/** Within one forward without a cache: each layer attends to the keys it just computed. */
export class StepKv implements KvStore {
  private readonly entries = new Map<number, KvEntry>();

  put(layer: LayerSpec, fresh: KvEntry): KvEntry {
    this.entries.set(layer.index, fresh);
    return fresh;
  }

  get(layer: number): KvEntry {
    const e = this.entries.get(layer);
    if (!e) throw new Error(`layer ${layer}'s K/V were read before they were computed`);
    return e;
  }
}

function concatMeta(a: TokenMeta, b: TokenMeta, batch: number): TokenMeta {
  const na = a.index.length;
  const nb = b.index.length;
  const index = new Int32Array(na + nb);
  index.set(a.index);
  index.set(b.index, na);
  const position = new Int32Array(batch * (na + nb));
  const segment = new Int32Array(batch * (na + nb));
  for (let r = 0; r < batch; r++) {
    position.set(a.position.subarray(r * na, (r + 1) * na), r * (na + nb));
    position.set(b.position.subarray(r * nb, (r + 1) * nb), r * (na + nb) + na);
    segment.set(a.segment.subarray(r * na, (r + 1) * na), r * (na + nb));
    segment.set(b.segment.subarray(r * nb, (r + 1) * nb), r * (na + nb) + na);
  }
  return { index, position, segment };
}

function lastKeys(meta: TokenMeta, keep: number, batch: number): TokenMeta {
  const n = meta.index.length;
  const from = n - keep;
  const position = new Int32Array(batch * keep);
  const segment = new Int32Array(batch * keep);
  for (let r = 0; r < batch; r++) {
    position.set(meta.position.subarray(r * n + from, (r + 1) * n), r * keep);
    segment.set(meta.segment.subarray(r * n + from, (r + 1) * n), r * keep);
  }
  return { index: meta.index.slice(from), position, segment };
}

/**
 * The cache of one generation stream (B rows decoded in lockstep). Feed it to `forward` step after step;
 * `length` is how many tokens it has seen (the next token's index and default position).
 */
export class KvCache implements KvStore {
  readonly batch: number;
  private readonly specs: LayerSpec[];
  private readonly window: number;
  /** Per non-shared layer: what is kept between steps. */
  private readonly kept = new Map<number, KvEntry>();
  /** Per non-shared layer: what it attended to in the current step (shared layers read this). */
  private readonly step = new Map<number, KvEntry>();
  private seen = 0;

  constructor(config: Gemma4Config, batch = 1) {
    this.batch = batch;
    this.specs = layerSpecs(config);
    this.window = config.sliding_window;
  }

  /** Tokens seen so far. */
  get length(): number {
    return this.seen;
  }

  /** Called by the forward pass when a step starts: frees last step's views that are not kept. */
  beginStep(): void {
    for (const [layer, e] of this.step) if (this.kept.get(layer) !== e) disposeEntry(e);
    this.step.clear();
  }

  /** Called by the forward pass when a step is done. */
  endStep(tokens: number): void {
    this.seen += tokens;
  }

  put(layer: LayerSpec, fresh: KvEntry): KvEntry {
    const past = this.kept.get(layer.index);
    const all: KvEntry = past
      ? {
          kT: tf.keep(tf.concat([past.kT, fresh.kT], 2)),
          v: tf.keep(tf.concat([past.v, fresh.v], 1)),
          keys: concatMeta(past.keys, fresh.keys, this.batch),
        }
      : { kT: tf.keep(fresh.kT), v: tf.keep(fresh.v), keys: fresh.keys };
    this.step.set(layer.index, all);
    // Sliding layers keep the last W keys (W−1 are needed; the spare one keeps the buffer valid
    // under the window-off-by-one ablation).
    const S = all.keys.index.length;
    let next = all;
    if (layer.sliding && S > this.window) {
      const from = S - this.window;
      next = {
        kT: tf.keep(tf.slice(all.kT, [0, 0, from], [-1, -1, this.window])),
        v: tf.keep(tf.slice(all.v, [0, from, 0], [-1, this.window, -1])),
        keys: lastKeys(all.keys, this.window, this.batch),
      };
    }
    if (past) disposeEntry(past);
    this.kept.set(layer.index, next);
    return all;
  }

  get(layer: number): KvEntry {
    const e = this.step.get(layer);
    if (!e) throw new Error(`layer ${layer}'s K/V were read before they were computed`);
    return e;
  }

  /** Keys held per layer (for tests and memory accounting). */
  keysHeld(layer: number): number {
    return this.kept.get(layer)?.keys.index.length ?? 0;
  }

  /** Which layers own a cache (the non-shared ones). */
  ownedLayers(): number[] {
    return this.specs.filter((s) => !s.kvShared).map((s) => s.index);
  }

  dispose(): void {
    this.beginStep();
    for (const e of this.kept.values()) disposeEntry(e);
    this.kept.clear();
    this.step.clear();
  }
}

function disposeEntry(e: KvEntry): void {
  e.kT.dispose();
  e.v.dispose();
}
