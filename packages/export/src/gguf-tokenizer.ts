// The tokenizer of a Hugging Face model folder as GGUF metadata for llama.cpp's `gemma4` BPE
// vocabulary: tokens in id order, token types, merges, special ids, add_bos and the chat template.
// Reference: spec/gemma4.md §5.3 and §10 (token types), spec/gguf.md §3.3; gguf-py SpecialVocab.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "@owntune/core";
import { readChatTemplateText } from "@owntune/tokenizer";
import { gguf, type GgufEntry } from "./gguf-format.js";

/** llama_token_type values (tokenizer.ggml.token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

/** What the exporter needs from a model folder's tokenizer files. */
export interface TokenizerFiles {
  /** Pieces in id order, exactly `vocabSize` of them. */
  tokens: string[];
  types: Int32Array;
  merges: string[];
  specialIds: { bos?: number; eos?: number; unk?: number; pad?: number; mask?: number };
  chatTemplate?: string;
  /** Added tokens dropped because their id is past the model's vocabulary (e.g. `<image_soft_token>`). */
  dropped: string[];
}

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new UserError(`cannot read (${(e as NodeJS.ErrnoException).code})`, {
      file: path,
      hint: "the model folder needs the tokenizer files of its Hugging Face checkpoint",
    });
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new UserError(`invalid JSON: ${(e as Error).message}`, { file: path });
  }
}

/** A `*_token` entry of tokenizer_config.json: a string or `{content}`. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return undefined;
}

/**
 * Reads `tokenizer.json` (+ `tokenizer_config.json`, `chat_template.jinja`) from `dir` for a
 * model with `vocabSize` embedding rows. `configIds` are config.json's bos/eos/pad ids, used
 * where tokenizer_config.json names none (gguf-py's order).
 */
export async function readTokenizerFiles(
  dir: string,
  vocabSize: number,
  configIds: { bos?: number; eos?: number; pad?: number } = {},
): Promise<TokenizerFiles> {
  const file = join(dir, "tokenizer.json");
  const tj = await readJson(file);
  const model = tj.model as { type?: string; vocab?: Record<string, number>; merges?: unknown[] } | undefined;
  if (!model || model.type !== "BPE" || !model.vocab || typeof model.vocab !== "object") {
    throw new UserError(`model.type is ${JSON.stringify(model?.type)}, expected "BPE" with a vocab (Gemma 4's tokenizer)`, {
      file,
      field: "model.type",
    });
  }
  const tokens: Array<string | undefined> = new Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(TokenType.NORMAL);
  const dropped: string[] = [];
  for (const [piece, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || id < 0)
      throw new UserError(`vocab entry ${JSON.stringify(piece)} has id ${id}`, { file, field: "model.vocab" });
    if (id >= vocabSize) {
      dropped.push(piece);
      continue;
    }
    tokens[id] = piece;
    if (BYTE_PIECE.test(piece)) types[id] = TokenType.BYTE;
  }
  const added = (tj.added_tokens ?? []) as AddedToken[];
  for (const a of added) {
    if (a.id >= vocabSize) {
      // Past the embedding rows (Gemma 3's <image_soft_token> at 262144): writing it would make token_embd the wrong shape.
      dropped.push(a.content);
      continue;
    }
    tokens[a.id] = a.content;
    // HF matches non-special added tokens inside raw text; llama.cpp does that for user-defined ones.
    types[a.id] = a.special ? TokenType.CONTROL : TokenType.USER_DEFINED;
  }
  const seen = new Map<string, number>();
  for (let id = 0; id < vocabSize; id++) {
    let piece = tokens[id];
    if (piece === undefined) {
      // As gguf-py pads a short vocabulary: a placeholder of type unused.
      piece = `[PAD${id}]`;
      tokens[id] = piece;
      types[id] = TokenType.UNUSED;
    }
    const other = seen.get(piece);
    // llama.cpp aborts its process on duplicate tokens (spec/gguf.md §3.3): refuse here.
    if (other !== undefined) throw new UserError(`token ${JSON.stringify(piece)} appears twice (ids ${other} and ${id})`, { file });
    seen.set(piece, id);
  }
  const merges = (model.merges ?? []).map((m, i) => {
    if (typeof m === "string") return m;
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") return `${m[0]} ${m[1]}`;
    throw new UserError(`merge ${i} is neither "a b" nor ["a", "b"]`, { file, field: "model.merges" });
  });
  if (merges.length === 0) throw new UserError("model.merges is empty; llama.cpp's gemma4 tokenizer needs the BPE merges", { file });

  const configPath = join(dir, "tokenizer_config.json");
  const tc = existsSync(configPath) ? await readJson(configPath) : undefined;
  const idOf = (key: string) => {
    const text = tokenText(tc?.[key]);
    return text !== undefined ? seen.get(text) : undefined;
  };
  const specialIds = {
    bos: idOf("bos_token") ?? configIds.bos,
    eos: idOf("eos_token") ?? configIds.eos,
    unk: idOf("unk_token"),
    pad: idOf("pad_token") ?? configIds.pad,
    mask: idOf("mask_token") ?? seen.get("<mask>"),
  };
  return {
    tokens: tokens as string[],
    types,
    merges,
    specialIds,
    chatTemplate: (await readChatTemplateText(dir, tc ?? {}))?.text,
    dropped,
  };
}

/** The `tokenizer.*` GGUF entries for these files. */
export function tokenizerEntries(t: TokenizerFiles): Array<[string, GgufEntry]> {
  const out: Array<[string, GgufEntry]> = [
    ["tokenizer.ggml.model", gguf.str("gemma4")],
    ["tokenizer.ggml.tokens", gguf.strings(t.tokens)],
    // The converter's placeholder score: BPE ranks come from the merges.
    ["tokenizer.ggml.scores", gguf.f32s(new Float32Array(t.tokens.length).fill(-1000))],
    ["tokenizer.ggml.token_type", gguf.i32s(t.types)],
    ["tokenizer.ggml.merges", gguf.strings(t.merges)],
  ];
  const ids: Array<[string, number | undefined]> = [
    ["bos_token_id", t.specialIds.bos],
    ["eos_token_id", t.specialIds.eos],
    ["unknown_token_id", t.specialIds.unk],
    ["padding_token_id", t.specialIds.pad],
    ["mask_token_id", t.specialIds.mask],
  ];
  for (const [k, v] of ids) if (v !== undefined) out.push([`tokenizer.ggml.${k}`, gguf.u32(v)]);
  // The Gemma converters force BOS on (llama.cpp forces it for gemma4 too); no space prefix.
  out.push(["tokenizer.ggml.add_bos_token", gguf.bool(true)]);
  out.push(["tokenizer.ggml.add_space_prefix", gguf.bool(false)]);
  if (t.chatTemplate !== undefined) out.push(["tokenizer.chat_template", gguf.str(t.chatTemplate)]);
  return out;
}

/** Token texts llama.cpp v0.4.0 marks end-of-generation by name (llama-vocab.cpp), besides eos/eot/eom. */
export const EOG_TEXTS: ReadonlySet<string> = new Set([
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>",
  "[e~[",
]);

/**
 * The ids llama.cpp will treat as end-of-generation for this vocabulary (its text list plus the
 * eos id; `</s>` is dropped when `<|tool_response>` is present, as llama.cpp does for Gemma 4).
 */
export function endOfGenerationIds(t: TokenizerFiles): number[] {
  const ids = new Set<number>();
  t.tokens.forEach((piece, id) => {
    if (EOG_TEXTS.has(piece)) ids.add(id);
  });
  if (t.specialIds.eos !== undefined) ids.add(t.specialIds.eos);
  if (t.tokens.includes("<|tool_response>")) {
    const s = t.tokens.indexOf("</s>");
    if (s >= 0) ids.delete(s);
  }
  return [...ids].sort((a, b) => a - b);
}

/**
 * A small synthetic BPE vocabulary (special tokens, the 256 byte tokens, letters and a few merges),
 * for micro configs (tests, benchmarks) whose vocabulary is not Gemma's 262,144.
 */
export function syntheticTokenizerFiles(vocabSize: number): TokenizerFiles {
  const tokens = ["<pad>", "<eos>", "<bos>", "<unk>"];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const letters = "▁abcdefghijklmnopqrstuvwxyz".split("");
  tokens.push(...letters);
  const merges: string[] = [];
  for (const l of letters.slice(1)) {
    if (tokens.length >= vocabSize) break;
    tokens.push(`▁${l}`);
    merges.push(`▁ ${l}`);
  }
  for (let i = tokens.length; i < vocabSize; i++) tokens.push(`<extra${i}>`);
  const types = new Int32Array(vocabSize).fill(1);
  for (let i = 0; i < 4; i++) types[i] = 3;
  for (let i = 4; i < 260; i++) types[i] = 6;
  return { tokens, types, merges, specialIds: { bos: 2, eos: 1, unk: 3, pad: 0 }, dropped: [] };
}
