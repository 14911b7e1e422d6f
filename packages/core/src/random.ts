// Seeded random numbers: deterministic streams for random weights, adapters and tests, the same on
// every platform. sfc32 (Chris Doty-Humphrey's PractRand small fast counting generator) seeded through FNV-1a.

/** 32-bit FNV-1a of a string. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

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
