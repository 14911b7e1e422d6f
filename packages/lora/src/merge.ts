// Merging a LoRA pair into its base weight, W' = W + scale·B·A, a block of rows at a time so a
// large matrix never needs a second full copy. Reference: PEFT LoraLayer.merge (delta = B @ A · scaling).
import type { LoraPair } from "./adapter.js";

/**
 * Rows [start, start+count) of the merged weight, given the same rows of the base `W [out, in]`
 * (row-major). Each value is fr(W + fr(scale · Σ_k B[r,k]·A[k,c])), the sum in float64.
 */
export function mergedRows(base: Float32Array, pair: LoraPair, scale: number, start: number, count: number): Float32Array {
  const { rank, inFeatures: n, a, b } = pair;
  if (base.length !== count * n) throw new RangeError(`merge: ${base.length} values is not ${count} rows of ${n}`);
  const out = new Float32Array(base.length);
  const acc = new Float64Array(n);
  for (let r = 0; r < count; r++) {
    acc.fill(0);
    for (let k = 0; k < rank; k++) {
      const bk = b[(start + r) * rank + k]!;
      if (bk === 0) continue;
      const row = k * n;
      for (let c = 0; c < n; c++) acc[c]! += bk * a[row + c]!;
    }
    for (let c = 0; c < n; c++) out[r * n + c] = base[r * n + c]! + Math.fround(scale * acc[c]!);
  }
  return out;
}

/** The whole merged weight (for small tensors and tests). */
export function mergeLora(base: Float32Array, pair: LoraPair, scale: number): Float32Array {
  return mergedRows(base, pair, scale, 0, pair.outFeatures);
}
