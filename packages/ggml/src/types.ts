// ggml tensor types: ids, block geometry and byte sizes (what the exporter writes and the native kernels
// hold). Reference: spec/gguf.md §1.6 (ggml/include/ggml.h, ggml/src/ggml.c type_traits).

/** ggml type ids (the u32 in a GGUF tensor info). */
export const GgmlType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  Q8_K: 15,
  BF16: 30,
} as const;
export type GgmlTypeName = keyof typeof GgmlType;

/** Elements per block and bytes per block of every type ggml knows that we may read or write. */
const GEOMETRY: Record<number, { name: string; block: number; bytes: number }> = {
  0: { name: "F32", block: 1, bytes: 4 },
  1: { name: "F16", block: 1, bytes: 2 },
  2: { name: "Q4_0", block: 32, bytes: 18 },
  3: { name: "Q4_1", block: 32, bytes: 20 },
  6: { name: "Q5_0", block: 32, bytes: 22 },
  7: { name: "Q5_1", block: 32, bytes: 24 },
  8: { name: "Q8_0", block: 32, bytes: 34 },
  9: { name: "Q8_1", block: 32, bytes: 36 },
  10: { name: "Q2_K", block: 256, bytes: 84 },
  11: { name: "Q3_K", block: 256, bytes: 110 },
  12: { name: "Q4_K", block: 256, bytes: 144 },
  13: { name: "Q5_K", block: 256, bytes: 176 },
  14: { name: "Q6_K", block: 256, bytes: 210 },
  15: { name: "Q8_K", block: 256, bytes: 292 },
  24: { name: "I8", block: 1, bytes: 1 },
  25: { name: "I16", block: 1, bytes: 2 },
  26: { name: "I32", block: 1, bytes: 4 },
  27: { name: "I64", block: 1, bytes: 8 },
  28: { name: "F64", block: 1, bytes: 8 },
  30: { name: "BF16", block: 1, bytes: 2 },
};

/** Type ids ggml accepts in a file (it rejects ids ≥ GGML_TYPE_COUNT = 43 in this build). */
export const GGML_TYPE_COUNT = 43;

/** The geometry of a type id, or undefined when we do not know its block layout. */
export function ggmlTypeInfo(type: number): { name: string; block: number; bytes: number } | undefined {
  return GEOMETRY[type];
}

/** Human name of a type id (`Q4_K`), or `type N` when unknown. */
export function ggmlTypeName(type: number): string {
  return GEOMETRY[type]?.name ?? `type ${type}`;
}

/** Bytes of `n` elements of `type`; `n` must be a multiple of the block size. */
export function ggmlNBytes(type: number, n: number): number {
  const g = GEOMETRY[type];
  if (!g) throw new RangeError(`unknown ggml type ${type}`);
  if (n % g.block !== 0) throw new RangeError(`${n} elements is not a whole number of ${g.name} blocks (${g.block})`);
  return (n / g.block) * g.bytes;
}
