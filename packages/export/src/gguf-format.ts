// GGUF v3 container constants and typed metadata values shared by the writer and the reader.
// Reference: spec/gguf.md §1 (ggml/src/gguf.cpp, ggml docs/gguf.md).

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
/** Data-section alignment when `general.alignment` is absent. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Metadata value type ids. */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufScalarType = Exclude<(typeof GgufValueType)[keyof typeof GgufValueType], 9>;

export const GGUF_VALUE_TYPE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];

/** Byte size of a fixed-size scalar type (strings are variable: undefined). */
export function scalarSize(type: number): number | undefined {
  return [1, 1, 2, 2, 4, 4, 4, 1, undefined, undefined, 8, 8, 8][type];
}

export type GgufScalar = number | bigint | boolean | string;

/** One metadata entry: a scalar, or an array of scalars of one type (ggml rejects nested arrays). */
export type GgufEntry =
  { type: GgufScalarType; value: GgufScalar } | { type: 9; itemType: GgufScalarType; value: readonly GgufScalar[] | ArrayLike<number> };

/** Constructors for the value types llama.cpp reads (counts and ids u32, floats f32: spec §1.2). */
export const gguf = {
  u32: (value: number): GgufEntry => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufEntry => ({ type: GgufValueType.INT32, value }),
  f32: (value: number): GgufEntry => ({ type: GgufValueType.FLOAT32, value }),
  bool: (value: boolean): GgufEntry => ({ type: GgufValueType.BOOL, value }),
  str: (value: string): GgufEntry => ({ type: GgufValueType.STRING, value }),
  strings: (value: readonly string[]): GgufEntry => ({ type: 9, itemType: GgufValueType.STRING, value }),
  i32s: (value: ArrayLike<number>): GgufEntry => ({ type: 9, itemType: GgufValueType.INT32, value }),
  u32s: (value: ArrayLike<number>): GgufEntry => ({ type: 9, itemType: GgufValueType.UINT32, value }),
  f32s: (value: ArrayLike<number>): GgufEntry => ({ type: 9, itemType: GgufValueType.FLOAT32, value }),
  bools: (value: readonly boolean[]): GgufEntry => ({ type: 9, itemType: GgufValueType.BOOL, value }),
};

/** The value of an entry as plain JS (arrays as JS arrays), for display and tests. */
export function entryValue(e: GgufEntry): unknown {
  return e.type === 9 ? Array.from(e.value as ArrayLike<unknown>) : e.value;
}

export function alignTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}
