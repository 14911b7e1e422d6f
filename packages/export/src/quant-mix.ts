// Which ggml type each tensor gets in the mixes users ask for by name, following llama-quantize
// without an imatrix (llama.cpp src/llama-quant.cpp, v0.4.0 as shipped in node-llama-cpp 3.21.1):
// tensor_allows_quantization, llama_tensor_get_type_impl, tensor_type_fallback. Spec: gguf.md §2.8.
import { GgmlType, ggmlTypeInfo } from "./quant/ggml-types.js";
import { compareGgufTensorNames } from "./tensor-names.js";

/** `--quant` values: plain float types and llama.cpp's named mixes. */
export const QUANT_MIXES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"] as const;
export type QuantMix = (typeof QUANT_MIXES)[number];

interface MixInfo {
  /** The base ggml type quantizable tensors get. */
  base: number;
  /** `general.file_type` (llama_ftype). */
  ftype: number;
}

const MIXES: Record<QuantMix, MixInfo> = {
  F32: { base: GgmlType.F32, ftype: 0 },
  F16: { base: GgmlType.F16, ftype: 1 },
  BF16: { base: GgmlType.BF16, ftype: 32 },
  Q8_0: { base: GgmlType.Q8_0, ftype: 7 },
  Q4_0: { base: GgmlType.Q4_0, ftype: 2 },
  Q4_K_M: { base: GgmlType.Q4_K, ftype: 15 },
  Q5_K_M: { base: GgmlType.Q5_K, ftype: 17 },
  Q6_K: { base: GgmlType.Q6_K, ftype: 18 },
};

/** `general.file_type` of a mix. */
export function mixFileType(mix: QuantMix): number {
  return MIXES[mix].ftype;
}

export function isQuantMix(s: string): s is QuantMix {
  return (QUANT_MIXES as readonly string[]).includes(s);
}

const isQuantized = (t: number) => t !== GgmlType.F32 && t !== GgmlType.F16 && t !== GgmlType.BF16;
const blockSize = (t: number) => ggmlTypeInfo(t)!.block;

/** ggml_n_dims: the number of dims with trailing 1s dropped (at least 1). */
function nDims(ne: readonly number[]): number {
  let n = ne.length;
  while (n > 1 && ne[n - 1] === 1) n--;
  return n;
}

/** tensor_allows_quantization: the name/shape rules that keep a tensor in its written type. */
export function allowsQuantization(name: string, ne: readonly number[]): boolean {
  if (nDims(ne) < 2) return false;
  if (!name.endsWith("weight")) return false;
  for (const part of ["_norm.weight", "ffn_gate_inp.weight", "altup", "laurel", "per_layer_model_proj"]) {
    if (name.includes(part)) return false;
  }
  return name !== "position_embd.weight" && name !== "token_types.weight";
}

/** llama-quantize's use_more_bits: the first and last eighth of the layers, and every third between. */
export function useMoreBits(i: number, n: number): boolean {
  const eighth = Math.trunc(n / 8);
  return i < eighth || i >= Math.trunc((7 * n) / 8) || (i - eighth) % 3 === 2;
}

/** tensor_type_fallback: a type whose block fits ne[0], as llama-quantize picks it. */
function fallback(type: number, ne0: number): number {
  if (ne0 % blockSize(type) === 0) return type;
  let t = type;
  if (type === GgmlType.Q4_K) t = GgmlType.Q5_0;
  else if (type === GgmlType.Q5_K) t = GgmlType.Q5_1;
  else if (type === GgmlType.Q6_K) t = GgmlType.Q8_0;
  return ne0 % blockSize(t) === 0 ? t : GgmlType.F16;
}

export interface PlannedTensor {
  /** GGUF name. */
  name: string;
  /** ggml dims, fastest first. */
  ne: number[];
}

/**
 * The ggml type of every tensor for `mix`, keyed by GGUF name. Tensors are visited in
 * llama-quantize's order, because the attn_v rule counts them: `n_v` is the number of attn_v
 * tensors present (KV-shared and k=v layers have none) and `i_v` how many came before, so on
 * Gemma 4 E2B the "more bits" attn_v layers are picked among layers 0–14, not 0–34.
 * Tensors that stay unquantized are F32 (what llama-quantize keeps from an F32 file; for E2B the
 * only large one, per_layer_model_proj, is 55 MB), except that the F16/BF16 mixes write 2-D ones
 * in their own type, as the HF converter does.
 */
export function planTensorTypes(tensors: readonly PlannedTensor[], mix: QuantMix, blockCount: number): Map<string, number> {
  const { base } = MIXES[mix];
  const ordered = [...tensors].sort((a, b) => compareGgufTensorNames(a.name, b.name));
  const tied = !ordered.some((t) => t.name === "output.weight");
  const nAttnV = ordered.filter((t) => t.name.includes("attn_v.weight")).length;
  let iAttnV = 0;
  let iFfnDown = 0;
  const kMix = mix === "Q4_K_M" || mix === "Q5_K_M";
  const plan = new Map<string, number>();
  for (const { name, ne } of ordered) {
    if (!allowsQuantization(name, ne)) {
      plan.set(name, nDims(ne) >= 2 && (mix === "F16" || mix === "BF16") ? base : GgmlType.F32);
      continue;
    }
    let type = base;
    if (!isQuantized(base)) {
      plan.set(name, type);
      continue;
    }
    const ne0 = ne[0]!;
    const isTokenEmbd = name === "token_embd.weight" || name === "per_layer_token_embd.weight";
    if (name === "output.weight" || (tied && isTokenEmbd)) {
      if (ne0 % blockSize(base) !== 0) type = GgmlType.Q8_0;
      else if (base !== GgmlType.Q8_0) type = GgmlType.Q6_K;
      else type = GgmlType.Q8_0;
    } else if (isTokenEmbd) {
      // untied token embeddings keep the base type in these mixes
    } else if (name.includes("attn_v.weight")) {
      if (kMix && useMoreBits(iAttnV, nAttnV)) type = GgmlType.Q6_K;
      iAttnV++;
    } else if (name.includes("ffn_down")) {
      if (kMix && useMoreBits(iFfnDown, blockCount)) type = GgmlType.Q6_K;
      iFfnDown++;
    }
    plan.set(name, fallback(type, ne0));
  }
  return plan;
}
