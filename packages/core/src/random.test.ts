// The seeded hashes and streams against their published definitions: FNV-1a's reference test vectors
// (Fowler/Noll/Vo test_fnv.c), the seeded 32-bit hash as FNV-1a from a seeded basis finished by fmix32,
// and the shuffle a permutation that a different seed changes.
import { describe, expect, it } from "vitest";
import { fillNormal, fmix32, fnv1a, hashString32, mulberry32, seededRandom, shuffledIndices } from "./random.js";

describe("hashes", () => {
  it("gives FNV-1a's published 32-bit test vectors", () => {
    expect(fnv1a("")).toBe(0x811c9dc5);
    expect(fnv1a("a")).toBe(0xe40c292c);
    expect(fnv1a("b")).toBe(0xe70c2de5);
    expect(fnv1a("foobar")).toBe(0xbf9cf968);
  });

  it("hashes a string with a seed as fmix32 of FNV-1a from the seeded offset basis", () => {
    expect(hashString32("foobar")).toBe(fmix32(0xbf9cf968));
    expect(hashString32("foobar", 7)).toBe(fmix32(fnv1a("foobar", 0x811c9dc5 ^ 7)));
    expect(fmix32(0)).toBe(0);
  });
});

describe("streams and shuffles", () => {
  it("repeats a stream for the same seed and key, and changes it for another key", () => {
    const a = Array.from({ length: 4 }, seededRandom(3, "w"));
    expect(Array.from({ length: 4 }, seededRandom(3, "w"))).toEqual(a);
    expect(Array.from({ length: 4 }, seededRandom(3, "v"))).not.toEqual(a);
    for (const x of [...a, ...Array.from({ length: 1000 }, mulberry32(1))]) expect(x >= 0 && x < 1).toBe(true);
  });

  it("draws normal samples with the requested mean and spread", () => {
    const x = fillNormal(new Float32Array(20_001), seededRandom(1, "normal"), 2, 0.5);
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    expect(Math.abs(mean - 2)).toBeLessThan(0.02);
    expect(Math.abs(sd - 0.5)).toBeLessThan(0.02);
  });

  it("shuffles 0..n−1 into a permutation that depends on the seed", () => {
    const p = shuffledIndices(1000, 42);
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect([...shuffledIndices(1000, 43)]).not.toEqual([...p]);
    expect([...shuffledIndices(1000, 42)]).toEqual([...p]);
  });
});
