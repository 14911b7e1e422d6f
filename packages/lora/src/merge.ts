// Merging a LoRA pair into its base weight, W' = W + scale·B·A, a block of rows at a time so a
// large matrix never needs a second full copy. Reference: PEFT LoraLayer.merge (delta = B @ A · scaling).
import type { AdapterWeights, LoraPair } from "./adapter.js";

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

/**
 * A row reader for base weight `weightName` (`….weight`) with the adapter's pair for that module merged
 * in: `readRows` itself where the adapter has no pair (or there is no adapter). How the GGUF export,
 * the merged/ folder and verify's weight check all read merged weights.
 */
export function mergedRowReader(
  adapter: AdapterWeights | undefined,
  weightName: string,
  readRows: (start: number, count: number) => Promise<Float32Array>,
): (start: number, count: number) => Promise<Float32Array> {
  const pair = adapter?.pairs.get(weightName.replace(/\.weight$/, ""));
  if (!adapter || !pair) return readRows;
  return async (start, count) => mergedRows(await readRows(start, count), pair, adapter.scale, start, count);
}

/** The whole merged weight (for small tensors and tests). */
export function mergeLora(base: Float32Array, pair: LoraPair, scale: number): Float32Array {
  return mergedRows(base, pair, scale, 0, pair.outFeatures);
}
