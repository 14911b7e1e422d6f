// Small, fast, seeded non-cryptographic hashes for shingles, LSH bands and sampling decisions.
// FNV-1a (Fowler–Noll–Vo) over UTF-16 code units, finished with MurmurHash3's fmix32 avalanche.

/** MurmurHash3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of a string with a seed. */
export function hashString32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}

/** A 53-bit hash (exact in a JS number) from two independent 32-bit hashes: for Set/Map keys. */
export function hashString53(s: string, seed = 0): number {
  const a = hashString32(s, seed);
  const b = hashString32(s, seed ^ 0x9e3779b9);
  return a * 0x200000 + (b >>> 11);
}

/** A uniform number in [0, 1) decided by (seed, parts): the same inputs always give the same draw. */
export function uniform(seed: number, ...parts: number[]): number {
  let h = fmix32(seed ^ 0x2545f491);
  for (const p of parts) h = fmix32(h ^ fmix32((p >>> 0) ^ Math.floor(p / 0x100000000)));
  return h / 0x100000000;
}

/** Mulberry32: a small seeded PRNG for shuffles (deterministic across platforms). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
  };
}

/**
 * A seeded Fisher–Yates permutation of 0..n−1 (mulberry32 draws, last position first): position i of a
 * shuffled list holds item `p[i]`. Four bytes per item, whatever the items are.
 */
export function shuffledIndices(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const rand = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
