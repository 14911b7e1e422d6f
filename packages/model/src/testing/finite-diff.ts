// Central finite differences in float64, for checking gradients against something we did not write.

/** ∂f/∂p[i] ≈ (f(p + h·e_i) − f(p − h·e_i)) / 2h for each index (p is restored afterwards). */
export function centralDiff(f: (p: Float64Array) => number, p: Float64Array, indices: readonly number[], h = 1e-5): Float64Array {
  const out = new Float64Array(indices.length);
  indices.forEach((i, j) => {
    const keep = p[i]!;
    p[i] = keep + h;
    const up = f(p);
    p[i] = keep - h;
    const down = f(p);
    p[i] = keep;
    out[j] = (up - down) / (2 * h);
  });
  return out;
}

/** `count` distinct indices in [0, n), spread deterministically. */
export function sampleIndices(n: number, count: number, salt = 0): number[] {
  if (count >= n) return Array.from({ length: n }, (_, i) => i);
  const out = new Set<number>();
  for (let k = 0; out.size < count; k++) out.add((k * 2_654_435_761 + salt * 40_503 + 17) % n);
  return [...out].sort((a, b) => a - b);
}

/** Float32 tensor data → float64 copy. */
export function f64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}
