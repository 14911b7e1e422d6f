// A GGUF file's tensors as a TensorSource under their HF names (prefix stripped), dequantized to
// float32 exactly as ggml does: what our forward pass reads when checking llama.cpp on the same
// numbers. Reference: tensor-names.ts (the one HF↔GGUF table), quant/quantize.ts.
import { open } from "node:fs/promises";
import type { TensorSource } from "@owntune/model";
import { UserError } from "@owntune/core";
import { assertDecodable, readGgufHeader, type GgufHeader, type GgufTensorInfo } from "./gguf-reader.js";
import { GgmlType, ggmlNBytes, ggmlTypeName } from "./quant/ggml-types.js";
import { dequantizeTensor } from "./quant/quantize.js";
import { hfTensorName } from "./tensor-names.js";

export interface GgufTensorSource extends TensorSource {
  header: GgufHeader;
  /** ggml type of the tensor behind an HF name. */
  ggmlType(name: string): number;
}

/** ggml float types whose rows are stored as plain values (as in safetensors), by their dtype name. */
const PLAIN_TYPES: Partial<Record<number, "F32" | "F16" | "BF16">> = {
  [GgmlType.F32]: "F32",
  [GgmlType.F16]: "F16",
  [GgmlType.BF16]: "BF16",
};

/** Opens a GGUF file as a TensorSource keyed by HF names. */
export async function openGgufTensorSource(path: string): Promise<GgufTensorSource> {
  const header = await readGgufHeader(path);
  const byHf = new Map<string, GgufTensorInfo>();
  for (const t of header.tensors) {
    const hf = hfTensorName(t.name);
    if (hf) byHf.set(hf, t);
  }
  const info = (name: string) => {
    const t = byHf.get(name);
    if (!t) throw new UserError(`the GGUF has no tensor for ${name}`, { file: path });
    assertDecodable(t, path);
    return t;
  };
  /** ggml rows [first, first+n) of a tensor (each ne[0] values), dequantized. */
  const readGgmlRows = async (t: GgufTensorInfo, first: number, n: number) => {
    const rowBytes = ggmlNBytes(t.type, t.ne[0]!);
    const bytes = new Uint8Array(n * rowBytes);
    const fh = await open(path, "r");
    try {
      await fh.read(bytes, 0, bytes.length, header.dataOffset + t.offset + first * rowBytes);
    } finally {
      await fh.close();
    }
    return dequantizeTensor(t.type, bytes, n * t.ne[0]!);
  };
  // HF shapes are ne reversed: HF rows run along ne's last axis, each ne[1]·…·ne[n−2] ggml rows;
  // a 1-D tensor is one ggml row whose HF rows are single values.
  const readRows = async (name: string, start: number, count: number) => {
    const t = info(name);
    const hfRows = t.ne[t.ne.length - 1]!;
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > hfRows) {
      throw new RangeError(`${path}: rows [${start}, ${start + count}) out of range for ${name} [${[...t.ne].reverse().join(", ")}]`);
    }
    if (t.ne.length === 1) return (await readGgmlRows(t, 0, 1)).subarray(start, start + count);
    const per = t.ne.slice(1, -1).reduce((a, b) => a * b, 1);
    return readGgmlRows(t, start * per, count * per);
  };
  return {
    header,
    has: (name) => byHf.has(name),
    shape: (name) => [...info(name).ne].reverse(),
    ggmlType: (name) => info(name).type,
    dtype: (name) => ggmlTypeName(info(name).type),
    read: (name) => {
      const t = info(name);
      return readGgmlRows(
        t,
        0,
        t.ne.slice(1).reduce((a, b) => a * b, 1),
      );
    },
    readRows,
    // A 2-D tensor's ggml rows are its HF rows: gathered from the file, plain or dequantized per row.
    fileRows: (name) => {
      const t = info(name);
      if (t.ne.length !== 2) return undefined;
      const at = { path, offset: header.dataOffset + t.offset, rows: t.ne[1]!, width: t.ne[0]! };
      const dtype = PLAIN_TYPES[t.type];
      if (dtype) return { ...at, dtype };
      return {
        ...at,
        dtype: "encoded",
        rowBytes: ggmlNBytes(t.type, t.ne[0]!),
        decode: (bytes, out) => out.set(dequantizeTensor(t.type, bytes, t.ne[0]!)),
      };
    },
  };
}
