// Invalid UTF-8 inside Parquet and Arrow string columns. Both libraries decode strings with a
// lenient TextDecoder (U+FFFD for bad bytes), so left alone a corrupt row would reach the model as
// replacement characters; like JSONL and CSV, it is reported instead, as `file:row` and the field.
import { isUtf8 } from "node:buffer";
import { DataType, type Data, type RecordBatch } from "apache-arrow";
import { findInvalidUtf8 } from "./source-row.js";

/** What a strict string parser returns for bytes that are not UTF-8 (hyparquet's `stringFromBytes`). */
export class InvalidUtf8 {
  constructor(readonly at: number) {}
}

const strict = new TextDecoder("utf-8", { fatal: true });

/**
 * hyparquet `parsers` whose `stringFromBytes` is strict: the string, or an InvalidUtf8 marker in its
 * place; `invalid` counts the markers made, so rows need searching only when it moved.
 */
export function strictStringParsers(): { parsers: { stringFromBytes: (bytes: Uint8Array) => string }; invalid: number } {
  const state = {
    invalid: 0,
    parsers: {
      stringFromBytes: ((bytes: Uint8Array | undefined) => {
        if (!bytes) return bytes;
        try {
          return strict.decode(bytes); // validates and decodes in one pass
        } catch {
          state.invalid++;
          return new InvalidUtf8(findInvalidUtf8(bytes));
        }
      }) as (bytes: Uint8Array) => string,
    },
  };
  return state;
}

/** The error of a row holding invalid UTF-8 (as JSONL and CSV rows get theirs). */
export function invalidUtf8Error(bad: { field: string; at: number }): string {
  return `invalid UTF-8 in field ${bad.field} at byte ${bad.at}`;
}

/** The path of the first InvalidUtf8 marker in a row (`messages[1].content`), with its byte offset. */
export function findInvalidMarker(v: unknown, path = ""): { field: string; at: number } | undefined {
  if (v instanceof InvalidUtf8) return { field: path, at: v.at };
  if (v === null || typeof v !== "object") return undefined;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const hit = findInvalidMarker(v[i], `${path}[${i}]`);
      if (hit) return hit;
    }
    return undefined;
  }
  for (const [k, x] of Object.entries(v)) {
    const hit = findInvalidMarker(x, path ? `${path}.${k}` : k);
    if (hit) return hit;
  }
  return undefined;
}

/**
 * Rows of a record batch holding a string that is not valid UTF-8: row index → the first such
 * field's path (`messages[1].content`) and byte offset. Strings are found through structs, lists,
 * fixed-size lists and maps.
 */
export function invalidUtf8Rows(batch: RecordBatch): Map<number, { field: string; at: number }> {
  const out = new Map<number, { field: string; at: number }>();
  batch.schema.fields.forEach((f, c) => {
    let base = 0;
    for (const d of batch.getChildAt(c)?.data ?? []) {
      const first = base;
      visit(
        d,
        (i) => first + i,
        () => f.name,
        out,
      );
      base += d.length;
    }
  });
  return out;
}

/** Element i of `data` belongs to row rowOf(i), at field path pathOf(i). */
function visit(
  data: Data,
  rowOf: (i: number) => number,
  pathOf: (i: number) => string,
  out: Map<number, { field: string; at: number }>,
): void {
  const { type } = data;
  if (DataType.isUtf8(type) || DataType.isLargeUtf8(type)) {
    const offsets = data.valueOffsets as ArrayLike<number | bigint>;
    const values = data.values as Uint8Array;
    for (let i = 0; i < data.length; i++) {
      const bytes = values.subarray(Number(offsets[i]), Number(offsets[i + 1]));
      if (isUtf8(bytes)) continue;
      const row = rowOf(i);
      if (!out.has(row)) out.set(row, { field: pathOf(i), at: findInvalidUtf8(bytes) });
    }
  } else if (DataType.isStruct(type)) {
    data.children.forEach((child, k) => visit(child, rowOf, (i) => `${pathOf(i)}.${type.children[k]!.name}`, out));
  } else if (DataType.isList(type) || DataType.isLargeList(type) || DataType.isMap(type)) {
    // Offsets index the whole child: its elements offsets[i] ≤ j < offsets[i+1] belong to element i.
    const offsets = data.valueOffsets as ArrayLike<number | bigint>;
    const start = Number(offsets[0] ?? 0);
    const owner = new Int32Array(Number(offsets[data.length] ?? 0) - start);
    for (let i = 0; i < data.length; i++) owner.fill(i, Number(offsets[i]) - start, Number(offsets[i + 1]) - start);
    const child = data.children[0]!.slice(start, owner.length);
    const parent = (j: number) => owner[j]!;
    visit(
      child,
      (j) => rowOf(parent(j)),
      (j) => `${pathOf(parent(j))}[${j + start - Number(offsets[parent(j)])}]`,
      out,
    );
  } else if (DataType.isFixedSizeList(type)) {
    const n = type.listSize;
    visit(
      data.children[0]!,
      (j) => rowOf(Math.floor(j / n)),
      (j) => `${pathOf(Math.floor(j / n))}[${j % n}]`,
      out,
    );
  }
}
