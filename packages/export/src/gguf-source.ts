// A GGUF file's tensors as a TensorSource under their HF names (prefix stripped), dequantized to
// float32 exactly as ggml does: what our forward pass reads when checking llama.cpp on the same
// numbers. Reference: tensor-names.ts (the one HF↔GGUF table), quant/quantize.ts.
import { open } from "node:fs/promises";
import { UserError, type TensorSource } from "@owntune/model";
import { readGgufHeader, type GgufHeader, type GgufTensorInfo } from "./gguf-reader.js";
import { ggmlNBytes } from "./quant/ggml-types.js";
import { dequantizeTensor } from "./quant/quantize.js";
import { hfTensorName } from "./tensor-names.js";

export interface GgufTensorSource extends TensorSource {
  header: GgufHeader;
  readRows(name: string, start: number, count: number): Promise<Float32Array>;
  /** ggml type of the tensor behind an HF name. */
  ggmlType(name: string): number;
}

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
    return t;
  };
  const readRows = async (name: string, start: number, count: number) => {
    const t = info(name);
    const rowBytes = ggmlNBytes(t.type, t.ne[0]!);
    const bytes = new Uint8Array(count * rowBytes);
    const fh = await open(path, "r");
    try {
      await fh.read(bytes, 0, bytes.length, header.dataOffset + t.offset + start * rowBytes);
    } finally {
      await fh.close();
    }
    return dequantizeTensor(t.type, bytes, count * t.ne[0]!);
  };
  return {
    header,
    has: (name) => byHf.has(name),
    shape: (name) => [...info(name).ne].reverse(),
    ggmlType: (name) => info(name).type,
    read: (name) => {
      const t = info(name);
      return readRows(name, 0, t.ne.slice(1).reduce((a, b) => a * b, 1));
    },
    readRows,
  };
}
