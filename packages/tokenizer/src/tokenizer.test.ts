// The tokenizer against Google's Gemma tokenizer files: expected ids are read from tokenizer.json's
// own vocabulary (not from our code), and text round-trips through encode/decode.
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "@owntune/core";
import { defaultTokenizerDir, GemmaTokenizer, loadDefaultTokenizer, loadTokenizer } from "./tokenizer.js";

let tok: GemmaTokenizer;
let vocab: Record<string, number>;
let added: Map<string, number>;
let tmp: string;

beforeAll(async () => {
  tok = await loadDefaultTokenizer();
  const json = JSON.parse(await readFile(join(defaultTokenizerDir(), "tokenizer.json"), "utf8"));
  vocab = json.model.vocab;
  added = new Map((json.added_tokens as Array<{ content: string; id: number }>).map((t) => [t.content, t.id]));
  tmp = await mkdtemp(join(tmpdir(), "owntune-tok-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The id tokenizer.json assigns to a piece (vocabulary or added token). */
const id = (piece: string): number => {
  const v = added.get(piece) ?? vocab[piece];
  if (v === undefined) throw new Error(`tokenizer.json has no piece ${JSON.stringify(piece)}`);
  return v;
};

describe("Gemma tokenizer (Gemma 3 release, the default)", () => {
  it("has the special ids the Gemma family fixes: <pad>=0, <eos>=1, <bos>=2, 262,144 vocabulary entries", () => {
    expect([tok.padId, tok.tokenToId("<eos>"), tok.bosId]).toEqual([0, 1, 2]);
    expect(tok.vocabSize).toBe(262_144);
    expect(tok.isDefaultGemma3).toBe(true);
    expect(tok.identity.source).toBe("default-gemma3");
    expect(tok.identity.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(tok.identity.chatTemplateSha256).toMatch(/^[0-9a-f]{64}$/);
    // <image_soft_token> sits past the model vocabulary: no embedding row for it.
    expect(tok.tokensBeyondVocab).toEqual([{ id: 262_144, content: "<image_soft_token>" }]);
  });

  it("encodes whole-word pieces to their tokenizer.json ids, with one <bos> first", () => {
    expect(tok.encode("Hello world")).toEqual([2, id("Hello"), id("▁world")]);
    expect(tok.encode("Hello world", { addBos: false })).toEqual([id("Hello"), id("▁world")]);
  });

  it("parses special-token text to its id and does not double <bos>", () => {
    expect(tok.encode("<bos><start_of_turn>user\nHi<end_of_turn>\n")).toEqual([
      2,
      id("<start_of_turn>"),
      id("user"),
      id("\n"),
      id("Hi"),
      id("<end_of_turn>"),
      id("\n"),
    ]);
    expect(tok.encode("a<eos>", { addBos: false })).toEqual([id("a"), 1]);
  });

  it("falls back to byte pieces <0xNN> for characters outside the vocabulary", () => {
    const ch = "\u{F0000}"; // supplementary private use: UTF-8 F3 B0 80 80
    expect(vocab[ch]).toBeUndefined();
    expect(tok.encode(ch, { addBos: false })).toEqual(["<0xF3>", "<0xB0>", "<0x80>", "<0x80>"].map(id));
    expect(tok.decode(tok.encode(ch, { addBos: false }))).toBe(ch);
  });

  it("keeps runs of spaces and newlines as the vocabulary's multi-space/newline pieces", () => {
    expect(tok.encode("a  b\n\n\nc", { addBos: false })).toEqual([id("a"), id("▁▁"), id("b"), id("\n\n\n"), id("c")]);
  });

  it.each([
    ["multilingual", "Grüße aus Köln — 日本語のテキスト, русский текст, العربية, हिन्दी."],
    ["emoji", "👩‍👩‍👧‍👦 family, 🤗 hugging, 🇫🇷 flag, ❤️ heart"],
    ["whitespace", "  leading\ttabs\t\tand   spaces \n\n trailing  \r\n"],
    ["code", "def f(x):\n    return {'a': [1, 2]}  # comment\n"],
    ["special-looking text", "<start_of_turn> literally, and <b>bold</b>, <unused7>"],
  ])("round-trips %s text exactly", (_label, text) => {
    const ids = tok.encode(text, { addBos: false });
    expect(ids.every((i) => Number.isInteger(i) && i >= 0 && i < tok.vocabSize)).toBe(true);
    expect(tok.decode(ids)).toBe(text);
  });

  it("decodes a literal ▁ (U+2581) as a space, as every SentencePiece-style tokenizer does", () => {
    expect(tok.decode(tok.encode("a▁b", { addBos: false }))).toBe("a b");
  });

  it("decodes without special tokens on request", () => {
    expect(tok.decode(tok.encode("<start_of_turn>hi<end_of_turn>"), { skipSpecial: true })).toBe("hi");
    expect(tok.isSpecial(2)).toBe(true);
    expect(tok.isSpecial(id("Hello"))).toBe(false);
  });

  it("ends generation on <eos> and <end_of_turn> (no Gemma 4 <turn|> in this vocabulary)", () => {
    expect(tok.tokenToId("<turn|>")).toBeUndefined();
    expect(tok.endOfGenerationIds).toEqual([1, id("<end_of_turn>")]);
  });

  it("encodes a batch like single calls", () => {
    const texts = ["one", "two words", ""];
    expect(tok.encodeBatch(texts)).toEqual(texts.map((t) => tok.encode(t)));
  });
});

describe("loadTokenizer on a model folder", () => {
  it("reads the folder's files, flags them as the model's own, and takes eos ids from generation_config", async () => {
    const dir = join(tmp, "own");
    await import("node:fs/promises").then((f) => f.mkdir(dir));
    await copyFile(join(defaultTokenizerDir(), "tokenizer.json"), join(dir, "tokenizer.json"));
    await copyFile(join(defaultTokenizerDir(), "tokenizer_config.json"), join(dir, "tokenizer_config.json"));
    const own = await loadTokenizer(dir, { eosTokenIds: [1, 106, 50] });
    expect(own.isDefaultGemma3).toBe(true); // a byte-identical copy of the Gemma 3 release is recognised
    expect(own.identity.source).toBe("model-dir");
    expect(own.identity.sha256).toBe(tok.identity.sha256);
    expect(own.endOfGenerationIds).toEqual([1, 50, 106]);
  });

  it("does not flag a different tokenizer.json as the Gemma 3 release", async () => {
    const dir = join(tmp, "other");
    await import("node:fs/promises").then((f) => f.mkdir(dir));
    const json = JSON.parse(await readFile(join(defaultTokenizerDir(), "tokenizer.json"), "utf8"));
    json.added_tokens.push({
      id: 262_145,
      content: "<my_token>",
      special: true,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
    });
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(json));
    const other = await loadTokenizer(dir);
    expect(other.isDefaultGemma3).toBe(false);
    expect(other.encode("a<my_token>", { addBos: false })).toEqual([id("a"), 262_145]);
    expect(other.endOfGenerationIds).toEqual([1, id("<end_of_turn>")]); // eos_token defaults to <eos> without a tokenizer_config
  });

  it("handles a Gemma 4-style vocabulary: <|turn>/<turn|> parsed as single ids, <turn|> ends generation, chat_template.jinja used", async () => {
    // The Gemma 3 files with ids 105/106 renamed as in Gemma 4 (spec §6: <|turn> 105, <turn|> 106).
    const dir = join(tmp, "gemma4-style");
    await import("node:fs/promises").then((f) => f.mkdir(dir));
    const json = JSON.parse(await readFile(join(defaultTokenizerDir(), "tokenizer.json"), "utf8"));
    const rename: Record<string, string> = { "<start_of_turn>": "<|turn>", "<end_of_turn>": "<turn|>" };
    for (const t of json.added_tokens) t.content = rename[t.content] ?? t.content;
    for (const [from, to] of Object.entries(rename)) {
      json.model.vocab[to] = json.model.vocab[from];
      delete json.model.vocab[from];
    }
    await writeFile(join(dir, "tokenizer.json"), JSON.stringify(json));
    await writeFile(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ bos_token: "<bos>", eos_token: "<eos>", pad_token: "<pad>", add_bos_token: false }),
    );
    await writeFile(
      join(dir, "chat_template.jinja"),
      "{{ bos_token }}{% for m in messages %}{{ '<|turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\\n' + (m['content'] | trim) + '<turn|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|turn>model\\n' }}{% endif %}",
    );
    const g4 = await loadTokenizer(dir, { eosTokenIds: [1, 106] });
    expect(g4.isDefaultGemma3).toBe(false);
    expect([g4.tokenToId("<|turn>"), g4.tokenToId("<turn|>"), g4.tokenToId("<end_of_turn>")]).toEqual([105, 106, undefined]);
    expect(g4.endOfGenerationIds).toEqual([1, 106]);
    const prompt = g4.applyChatTemplate([{ role: "user", content: "Hello" }], { addGenerationPrompt: true });
    expect(prompt).toBe("<bos><|turn>user\nHello<turn|>\n<|turn>model\n");
    expect(g4.encode(prompt)).toEqual([2, 105, id("user"), id("\n"), id("Hello"), 106, id("\n"), 105, id("model"), id("\n")]);
    expect(g4.identity.chatTemplateSha256).not.toBe(tok.identity.chatTemplateSha256);
  });

  it("falls back to the Gemma 3 tokenizer only when asked", async () => {
    await expect(loadTokenizer(tmp)).rejects.toThrow(UserError);
    expect((await loadTokenizer(tmp, { fallbackToDefault: true })).isDefaultGemma3).toBe(true);
  });

  it("reports a broken tokenizer.json as a UserError naming it", async () => {
    const dir = join(tmp, "broken");
    await import("node:fs/promises").then((f) => f.mkdir(dir));
    await writeFile(join(dir, "tokenizer.json"), "{ not json");
    await expect(loadTokenizer(dir)).rejects.toThrow(
      expect.objectContaining({ file: join(dir, "tokenizer.json"), message: "not valid JSON" }),
    );
  });
});
