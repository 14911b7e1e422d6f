// Seeded random numbers and non-cryptographic hashes, the same on every platform. Hashes: FNV-1a
// (Fowler–Noll–Vo) over UTF-16 code units, finished with MurmurHash3's fmix32 avalanche where they key
// shingles, LSH bands and sampling decisions. Streams: sfc32 (PractRand's small fast counter) for random
// weights, adapters and tests; mulberry32 for the curate shuffles (Fisher–Yates). Changing any of these
// changes every random model, dataset order and adapter owntune has written: they are fixed.

// ---------------------------------------------------------------------------------------------
// Hashes.

/** 32-bit FNV-1a of a string's UTF-16 code units, from `basis` (FNV's offset basis by default). */
export function fnv1a(s: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

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
  return fmix32(fnv1a(s, 0x811c9dc5 ^ seed));
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

// ---------------------------------------------------------------------------------------------
// Streams.

/** sfc32: small, fast, statistically sound 32-bit PRNG; returns floats in [0, 1). */
export function sfc32(a: number, b: number, c: number, d: number): () => number {
  return () => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** A seeded uniform [0,1) stream for `key`; the same (seed, key) always gives the same numbers. */
export function seededRandom(seed: number, key: string): () => number {
  const rng = sfc32(fnv1a(`a${seed}:${key}`), fnv1a(`b${seed}:${key}`), fnv1a(`c${seed}:${key}`), seed >>> 0);
  for (let i = 0; i < 12; i++) rng(); // warm up the state
  return rng;
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

/** Fills `out` with N(mean, std²) samples (Box–Muller) from `rng`. */
export function fillNormal(out: Float32Array, rng: () => number, mean = 0, std = 1): Float32Array {
  for (let i = 0; i < out.length; i += 2) {
    const u = 1 - rng(); // (0, 1]
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shuffles.

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
