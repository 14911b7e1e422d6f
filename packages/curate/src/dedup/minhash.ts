// MinHash signatures (Broder 1997) and the LSH banding that finds candidate near-duplicates
// (Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets" §3.4). Shingles are word or character
// n-grams of simplified text, as in datatrove's MinhashDedupSignature; bands×rows follow datasketch.
import { fmix32, hashString32 } from "@owntune/core";
import { splitWords } from "../filters/filter.js";

/** datatrove's simplify_text in spirit: lowercase, punctuation out, whitespace collapsed. */
export function simplifyText(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
}

/** FNV-1a over `s` from state `h` (hashString32 before its finalizer). */
function fnvFrom(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/**
 * Unique hashed shingles of `text`: word or character n-grams of its simplified form. A word shingle's
 * hash is hashString32 of its words joined by spaces, computed word by word without building the string.
 */
export function shingleHashes(text: string, unit: "word" | "char", n: number): Uint32Array {
  const set = new Set<number>();
  if (unit === "word") {
    // Simplified text has no punctuation or symbols left, so no word is a symbol word (isSymbolWord).
    const words = splitWords(simplifyText(text));
    if (words.length > 0 && words.length < n) set.add(hashString32(words.join(" ")));
    for (let i = 0; i + n <= words.length; i++) {
      let h = fnvFrom(0x811c9dc5, words[i]!);
      for (let k = 1; k < n; k++) h = fnvFrom(Math.imul(h ^ 0x20, 0x01000193), words[i + k]!);
      set.add(fmix32(h));
    }
  } else {
    const s = simplifyText(text);
    if (s.length > 0 && s.length < n) set.add(hashString32(s));
    for (let i = 0; i + n <= s.length; i++) set.add(hashString32(s.slice(i, i + n)));
  }
  return Uint32Array.from(set);
}

/** Per-permutation seeds derived from one seed. */
export function permutationSeeds(numPerm: number, seed: number): Uint32Array {
  const out = new Uint32Array(numPerm);
  for (let i = 0; i < numPerm; i++) out[i] = fmix32((seed * 0x9e3779b1 + i * 0x85ebca77 + 1) >>> 0);
  return out;
}

/**
 * The MinHash signature: for each permutation π_i(x) = fmix32(x ⊕ s_i) (a bijection of uint32),
 * the minimum over the shingles. P[sig_i(A) = sig_i(B)] ≈ Jaccard(A, B).
 */
export function minhashSignature(shingles: Uint32Array, seeds: Uint32Array): Uint32Array {
  const sig = new Uint32Array(seeds.length).fill(0xffffffff);
  for (let i = 0; i < seeds.length; i++) {
    const s = seeds[i]!;
    let min = 0xffffffff;
    for (let j = 0; j < shingles.length; j++) {
      const v = fmix32(shingles[j]! ^ s);
      if (v < min) min = v;
    }
    sig[i] = min;
  }
  return sig;
}

/** Share of equal positions: the MinHash estimate of Jaccard similarity. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) eq++;
  return eq / a.length;
}

/** Exact Jaccard similarity |A∩B| / |A∪B| of two shingle sets. */
export function exactJaccard(a: Uint32Array, b: Uint32Array): number {
  const sa = new Set(a);
  let inter = 0;
  const sb = new Set(b);
  for (const x of sb) if (sa.has(x)) inter++;
  const union = sa.size + sb.size - inter;
  return union === 0 ? 1 : inter / union;
}

/** Probability that a pair with Jaccard s shares at least one band: 1 − (1 − s^r)^b. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - Math.pow(1 - Math.pow(s, rows), bands);
}

function integrate(f: (x: number) => number, a: number, b: number, steps = 256): number {
  // Simpson's rule; the integrands are smooth polynomials in s.
  if (b <= a) return 0;
  const h = (b - a) / steps;
  let sum = f(a) + f(b);
  for (let i = 1; i < steps; i++) sum += f(a + i * h) * (i % 2 === 1 ? 4 : 2);
  return (sum * h) / 3;
}

/**
 * Bands and rows (b·r ≤ numPerm) minimizing the false-positive area below the threshold plus the
 * false-negative area above it, equally weighted: datasketch's `_optimal_param`.
 */
export function lshParams(threshold: number, numPerm: number): { bands: number; rows: number } {
  let best = { bands: 1, rows: numPerm, error: Infinity };
  for (let b = 1; b <= numPerm; b++) {
    const maxR = Math.floor(numPerm / b);
    for (let r = 1; r <= maxR; r++) {
      const fp = integrate((s) => candidateProbability(s, b, r), 0, threshold);
      const fn = integrate((s) => 1 - candidateProbability(s, b, r), threshold, 1);
      const error = 0.5 * fp + 0.5 * fn;
      if (error < best.error) best = { bands: b, rows: r, error };
    }
  }
  return { bands: best.bands, rows: best.rows };
}

/** The LSH shape of a near-dedup config: its bands × rows, or the ones its threshold implies. */
export function lshShape(near: { num_perm: number; bands?: number; rows?: number; threshold: number }): { bands: number; rows: number } {
  return near.bands && near.rows ? { bands: near.bands, rows: near.rows } : lshParams(near.threshold, near.num_perm);
}

/**
 * One 53-bit key per band of a MinHash signature (two independent 32-bit hashes of the band's rows):
 * documents sharing a key in some band are candidate near-duplicates.
 */
export function bandKeys(signature: Uint32Array, bands: number, rows: number): Float64Array {
  const keys = new Float64Array(bands);
  for (let band = 0; band < bands; band++) {
    let h1 = 0x9747b28c ^ band;
    let h2 = 0x2b7e1516 ^ band;
    for (let r = 0; r < rows; r++) {
      const v = signature[band * rows + r]!;
      h1 = fmix32(h1 ^ v);
      h2 = fmix32(Math.imul(h2, 31) ^ v);
    }
    keys[band] = h1 * 0x200000 + (h2 >>> 11);
  }
  return keys;
}

/**
 * LSH index with union-find clustering: add band keys in input order; a document joins the cluster
 * of every earlier document it shares a band with. The kept member of a cluster is its first
 * document (smallest index), as datatrove's MinhashDedupCluster keeps one per cluster.
 */
export class LshClusters {
  private readonly buckets: Array<Map<number, number>>;
  private readonly parent: number[] = [];

  constructor(
    readonly bands: number,
    readonly rows: number,
  ) {
    this.buckets = Array.from({ length: bands }, () => new Map());
  }

  private find(x: number): number {
    let r = x;
    while (this.parent[r] !== r) r = this.parent[r]!;
    while (this.parent[x] !== r) {
      const next = this.parent[x]!;
      this.parent[x] = r;
      x = next;
    }
    return r;
  }

  private union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // The smaller index becomes the root: the first document of a cluster is the one kept.
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
  }

  /** Adds document `id` with its band keys (see bandKeys); ids must be added in increasing order. */
  add(id: number, keys: Float64Array): void {
    this.parent[id] = id;
    for (let band = 0; band < this.bands; band++) {
      const bucket = this.buckets[band]!;
      const key = keys[band]!;
      const first = bucket.get(key);
      if (first === undefined) bucket.set(key, id);
      else this.union(first, id);
    }
  }

  /** Whether `id` is the kept (first) member of its cluster. */
  isKept(id: number): boolean {
    return this.find(id) === id;
  }

  /** The kept member of `id`'s cluster. */
  representative(id: number): number {
    return this.find(id);
  }
}
