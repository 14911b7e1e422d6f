// FastEncoder against the library it replaces (@huggingface/tokenizers 0.2.0, a separate instance
// built from the same files): identical ids on a large varied corpus with Google's Gemma tokenizer,
// and on random texts with small made-up vocabularies that exercise every branch the library has
// (unsafe chunk boundaries, merges outside the vocabulary, byte fallback, unk, fuse_unk, ignore_merges,
// lstrip/rstrip/normalized added tokens, Metaspace pre-tokenization).
import { readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer } from "@huggingface/tokenizers";
import { beforeAll, describe, expect, it } from "vitest";
import { seededRandom } from "@owntune/core";
import { FastEncoder } from "./fast-encode.js";
import { defaultTokenizerDir, loadDefaultTokenizer, type GemmaTokenizer } from "./tokenizer.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** A deterministic uniform [0, 1) stream per seed. */
const rng = (seed: number) => seededRandom(seed, "fast-encode");

const pick = <T>(rand: () => number, xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

/** Compares ids text by text; returns a description of the first mismatch (or "") and the totals. */
function compare(texts: readonly string[], want: (t: string) => number[], got: (t: string) => number[]) {
  let tokens = 0;
  let bytes = 0;
  for (const text of texts) {
    const a = want(text);
    const b = got(text);
    tokens += a.length;
    bytes += Buffer.byteLength(text);
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      if (a[i] !== b[i]) {
        const where = `text ${JSON.stringify(text.slice(0, 120))}… (${text.length} chars): token ${i} of ${a.length}`;
        return {
          mismatch: `${where}: library ${JSON.stringify(a.slice(i, i + 6))}, ours ${JSON.stringify(b.slice(i, i + 6))}`,
          tokens,
          bytes,
        };
      }
    }
  }
  return { mismatch: "", tokens, bytes };
}

const MULTILINGUAL = [
  "مرحبا بالعالم، هذه جملة عربية قصيرة للاختبار. الذكاء الاصطناعي يغيّر العالم بسرعة كبيرة.",
  "שלום עולם, זהו משפט בעברית לבדיקה של המקודד.",
  "नमस्ते दुनिया, यह परीक्षण के लिए एक हिंदी वाक्य है। भारत एक विशाल देश है।",
  "আমি বাংলায় গান গাই। வணக்கம் உலகம். ਸਤ ਸ੍ਰੀ ਅਕਾਲ। నమస్కారం ప్రపంచం.",
  "สวัสดีชาวโลก นี่คือประโยคภาษาไทยสำหรับการทดสอบ ຂອບໃຈ ជំរាបសួរ",
  "你好，世界！这是一个用于测试的中文句子。机器学习正在改变世界。繁體中文：臺灣的夜市很熱鬧。",
  "こんにちは世界。これはテスト用の日本語の文です。東京は日本の首都です。カタカナとひらがな。",
  "안녕하세요 세계. 이것은 테스트를 위한 한국어 문장입니다. 서울은 대한민국의 수도입니다.",
  "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю. Україна, Беларусь.",
  "Γειά σου Κόσμε· ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Բարեւ աշխարհ. გამარჯობა მსოფლიო. ሰላም ልዑል",
  "Xin chào thế giới, đây là một câu tiếng Việt. Zażółć gęślą jaźń. Pchnąć w tę łódź jeża. Çok güzel!",
  "Grüße aus Köln — naïve café, fiancée, coöperate; Ångström, Øresund, Þingvellir, ß→SS, ﬁ ligature.",
  "e\u0301 vs é, Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇, \u200b zero\u200dwidth \u200e\u200f marks, \ufeffBOM, soft\u00adhyphen",
  "👩‍👩‍👧‍👦 👨🏽‍💻 🏳️‍🌈 🇫🇷🇯🇵🇧🇷 ❤️‍🔥 🤷🏻‍♀️ 1️⃣ #️⃣ 🧑‍🤝‍🧑 🫠🫶🏿 🐈‍⬛ 👁️‍🗨️",
  "∀x∈ℝ: x²≥0, ∑ᵢ i = n(n+1)/2, ≠ ≤ ≥ ∞ √2 π≈3.14159, ℏ ∂ ∇ ∫₀^∞ e^{-x²} dx = √π/2, ½ ¾ ⅞",
];

const ADDED = [
  "<start_of_turn>",
  "<end_of_turn>",
  "<unused12>",
  "<mask>",
  "<bos>",
  "<eos>",
  "<pad>",
  "<unk>",
  "[multimodal]",
  "<table>",
  "</td>",
  "<start_of_image>",
  "<image_soft_token>",
];

/** Texts a tokenizer meets: repo docs and code, JSON, real translations, and the edge cases of each branch. */
function gemmaCorpus(vocabPieces: readonly string[]): Record<string, string[]> {
  const rand = rng(12345);
  const files = (dir: string, ext: string) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(ext))
      .sort()
      .map((f) => readFileSync(join(dir, f), "utf8"));
  const markdown = [join(repo, "README.md"), join(repo, "BENCHMARKS.md"), join(repo, "datasets", "tiny-chat", "README.md")].map((f) =>
    readFileSync(f, "utf8"),
  );
  const code = [
    ...files(join(repo, "packages", "model", "src"), ".ts").slice(0, 12),
    ...files(join(repo, "packages", "curate", "src"), ".ts").slice(0, 6),
  ];
  const tsLib = dirname(createRequire(import.meta.url).resolve("typescript"));
  const translations: string[] = [];
  for (const lang of ["de", "fr", "es", "ru", "ja", "ko", "zh-cn", "zh-tw", "pl", "tr", "cs", "pt-br", "it"]) {
    const messages = Object.values(JSON.parse(readFileSync(join(tsLib, lang, "diagnosticMessages.generated.json"), "utf8"))) as string[];
    // One long line per language sample: the library's slowest case (one BPE word per line).
    for (let d = 0; d < 8; d++) translations.push(Array.from({ length: 12 }, () => pick(rand, messages)).join(" "));
  }
  const words = markdown
    .join(" ")
    .split(/\s+/)
    .filter((w) => w.length > 0);
  const prose = Array.from({ length: 200 }, () => {
    const paragraphs = Array.from({ length: 1 + Math.floor(rand() * 4) }, () =>
      Array.from({ length: 30 + Math.floor(rand() * 120) }, () => pick(rand, words)).join(" "),
    );
    return paragraphs.join("\n\n");
  });
  const mixed = Array.from({ length: 150 }, () =>
    Array.from({ length: 6 }, () => pick(rand, MULTILINGUAL)).join(pick(rand, [" ", "\n", "  ", "\t", ""])),
  );
  const whitespace = Array.from({ length: 200 }, () =>
    Array.from({ length: 40 }, () =>
      pick(rand, [" ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000", "\u2581", "x", "word", ".", "\v", "\f"]),
    ).join(""),
  );
  const special = Array.from({ length: 200 }, () =>
    Array.from({ length: 12 }, () =>
      pick(rand, [...ADDED, " ", "  ", "\n", "hello", " world", "user\n", "<start_of_turn", "<unused", "turn>", "<b>", "<p>"]),
    ).join(""),
  );
  const tags = [
    "<p>  </p> x>  </y a> </b <div> </div>",
    "<li> </li>\n<td>  </td> >  </ > </ >▁</ >▁▁</ >   </x",
    "<html><body><p>Hello</p> <p>world</p></body></html>",
    "a> </b".repeat(50),
    "<span> </span>".repeat(40),
  ];
  const vocabMix = Array.from({ length: 600 }, () =>
    Array.from({ length: 20 + Math.floor(rand() * 200) }, () => {
      const p = pick(rand, vocabPieces);
      return rand() < 0.5 ? p.replaceAll("\u2581", " ") : p;
    }).join(""),
  );
  const randomUnicode = Array.from({ length: 300 }, () => {
    let s = "";
    for (let i = 0, n = 1 + Math.floor(rand() * 300); i < n; i++) {
      const r = rand();
      const cp = r < 0.3 ? 32 + Math.floor(rand() * 95) : r < 0.8 ? Math.floor(rand() * 0x10000) : Math.floor(rand() * 0x110000);
      s += cp >= 0xd800 && cp < 0xe000 ? String.fromCharCode(cp) : String.fromCodePoint(cp); // lone surrogates included
    }
    return s;
  });
  const longWords = [
    "a".repeat(300),
    "ab".repeat(700),
    "▁".repeat(400),
    " ".repeat(1000),
    "\t".repeat(300) + "x",
    "supercalifragilisticexpialidocious".repeat(20),
    "https://example.com/" + Array.from({ length: 60 }, (_, i) => `segment${i}`).join("/") + "?q=" + "x".repeat(200),
    Buffer.from(Array.from({ length: 1500 }, () => Math.floor(rand() * 256))).toString("base64"),
    "日本語".repeat(200),
    "🤗".repeat(300),
    "\u{F0000}".repeat(100),
    Array.from({ length: 600 }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(""),
    Array.from({ length: 70_000 }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(""), // grows, then gives back, the scratch arrays
  ];
  const json = [
    readFileSync(join(repo, "package.json"), "utf8"),
    readFileSync(join(repo, "datasets", "tiny-chat", "data.jsonl"), "utf8").slice(0, 20_000),
    JSON.stringify({ nested: { arr: [1, 2.5, -3e10, null, true], s: 'q"uote\\' } }, null, 2),
  ];
  const edge = ["", " ", "▁", "\n", "a", " a", "a ", "  ", "<", ">", "<>", "</", "> </", ">  </", "\uD800", "\uDC00\uD800", "x\u0000y"];
  return { markdown, code, json, translations, prose, mixed, whitespace, special, tags, vocabMix, randomUnicode, longWords, edge };
}

describe("FastEncoder with Google's Gemma tokenizer", () => {
  let reference: Tokenizer;
  let tok: GemmaTokenizer;
  let vocabPieces: string[];

  beforeAll(async () => {
    const json = JSON.parse(readFileSync(join(defaultTokenizerDir(), "tokenizer.json"), "utf8"));
    const config = JSON.parse(readFileSync(join(defaultTokenizerDir(), "tokenizer_config.json"), "utf8"));
    vocabPieces = Object.keys(json.model.vocab);
    reference = new Tokenizer(json, config);
    tok = await loadDefaultTokenizer();
  });

  it("is what GemmaTokenizer.encode uses for Gemma's tokenizer.json", () => {
    expect(tok.slowEncodeReason).toBeUndefined();
  });

  it("gives the library's ids on prose, code, JSON, 20+ scripts, whitespace runs, added tokens, random unicode and long words", () => {
    const corpus = gemmaCorpus(vocabPieces);
    let texts = 0;
    for (const [label, items] of Object.entries(corpus)) {
      const r = compare(
        items,
        (t) => reference.encode(t, { add_special_tokens: false }).ids,
        (t) => tok.encode(t, { addBos: false }),
      );
      console.log(`${label}: ${items.length} texts, ${(r.bytes / 1e3).toFixed(0)} kB, ${r.tokens} tokens: ${r.mismatch || "identical"}`);
      expect(r.mismatch, label).toBe("");
      texts += items.length;
    }
    expect(texts).toBeGreaterThan(1500);
  });

  it("still adds exactly one <bos>", () => {
    expect(tok.encode("Hello")).toEqual([tok.bosId, ...reference.encode("Hello", { add_special_tokens: false }).ids]);
    expect(tok.encode("<bos>Hello")).toEqual(reference.encode("<bos>Hello", { add_special_tokens: false }).ids);
    expect(tok.encode("")).toEqual([tok.bosId]);
  });

  it("keeps '>▁</' whole: Gemma's one merge result with a letter before an inner ▁ (no chunk boundary there)", () => {
    const want = reference.encode("<p> </p>", { add_special_tokens: false });
    expect(want.tokens).toContain(">▁</");
    expect(tok.encode("<p> </p>", { addBos: false })).toEqual(want.ids);
  });
});

/** A BPE vocabulary grown from `alphabet` by `n` random merges of existing symbols (some results left out of the vocabulary). */
function randomBpe(
  rand: () => number,
  alphabet: readonly string[],
  n: number,
  options: { dropFromVocab: number; extraMerges: Array<[string, string]> },
) {
  const symbols = [...alphabet];
  const merges: Array<[string, string]> = [];
  const vocabList: string[] = [...alphabet];
  for (let i = 0; i < n; i++) {
    const a = pick(rand, symbols);
    const b = pick(rand, symbols);
    merges.push([a, b]);
    if (!symbols.includes(a + b)) symbols.push(a + b);
    if (rand() >= options.dropFromVocab && !vocabList.includes(a + b)) vocabList.push(a + b);
    if (rand() < 0.05) merges.push(pick(rand, merges)); // duplicates: the later rank wins in the library
  }
  merges.splice(Math.floor(rand() * merges.length), 0, ...options.extraMerges);
  return { merges, vocabList };
}

function tokenizerJson(parts: {
  vocabList: string[];
  merges: unknown[];
  added: Array<{ content: string; lstrip?: boolean; rstrip?: boolean; normalized?: boolean; special?: boolean }>;
  model?: Record<string, unknown>;
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
}) {
  const vocab: Record<string, number> = {};
  for (const t of parts.vocabList) vocab[t] ??= Object.keys(vocab).length;
  const size = Object.keys(vocab).length;
  return {
    added_tokens: parts.added.map((t, i) => ({
      id: vocab[t.content] ?? size + i,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: false,
      ...t,
    })),
    normalizer: parts.normalizer ?? null,
    pre_tokenizer: parts.pre_tokenizer ?? null,
    post_processor: parts.post_processor ?? null,
    decoder: null,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      byte_fallback: true,
      fuse_unk: false,
      ignore_merges: false,
      vocab,
      merges: parts.merges,
      ...parts.model,
    },
  };
}

describe("FastEncoder with made-up vocabularies", () => {
  const bytes = (list: number[]) => list.map((b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  const alphabet = ["a", "b", "c", "d", ">", "<", "/", "\u2581", "é", "😀", "x"];

  function randomTexts(rand: () => number, extra: readonly string[], count: number): string[] {
    const chars = [...alphabet, " ", " ", " ", "  ", "q", "ü", "\u{1F600}", "\uD800", ...extra];
    const unbroken = chars.filter((c) => !c.includes(" ") && !c.includes("\u2581")); // long chunks: the heap path
    return Array.from({ length: count }, (_, i) =>
      Array.from({ length: Math.floor(rand() * 400) }, () => pick(rand, i % 4 === 0 ? unbroken : chars)).join(""),
    );
  }

  function expectSame(json: ReturnType<typeof tokenizerJson>, texts: readonly string[], config: Record<string, unknown> = {}) {
    const reference = new Tokenizer(structuredClone(json), config);
    const fast = FastEncoder.fromLibrary(new Tokenizer(structuredClone(json), config));
    if (typeof fast === "string") throw new Error(`fast path refused: ${fast}`);
    const r = compare(
      texts,
      (t) => reference.encode(t, { add_special_tokens: false }).ids,
      (t) => fast.encode(t),
    );
    expect(r.mismatch).toBe("");
    return r;
  }

  it("matches on Gemma's structure with merges that span '▁', merges outside the vocabulary, missing byte pieces, unk and fuse_unk", () => {
    for (let seed = 1; seed <= 6; seed++) {
      const rand = rng(seed);
      // "b▁", "d▁a" and ">▁<" put a letter before an inner ▁, so chunking must not split there.
      const { merges, vocabList } = randomBpe(rand, alphabet, 300, {
        dropFromVocab: 0.1,
        extraMerges: [
          ["b", "\u2581"],
          ["d", "\u2581a"],
          [">\u2581", "<"],
          [">", "\u2581"],
        ],
      });
      const json = tokenizerJson({
        vocabList: ["<unk>", ...vocabList.filter((t) => t !== "\u2581dé"), ...bytes([0x20, 0x71, 0xc3, 0xbc, 0xf0, 0x9f, 0x98, 0x80])], // no bytes for U+FFFD: unk
        merges: [...merges, ["a", "b", "c"], "a b"], // entries the library can never match
        added: [
          { content: "<unk>", special: true },
          { content: "<s>", special: true },
          { content: " dé", normalized: true },
        ],
        model: { fuse_unk: seed % 2 === 0 },
        normalizer: { type: "Replace", pattern: { String: " " }, content: "\u2581" },
        pre_tokenizer: { type: "Split", pattern: { String: " " }, behavior: "MergedWithPrevious", invert: false },
        post_processor: {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [],
          special_tokens: {},
        },
      });
      const r = expectSame(json, [...randomTexts(rand, ["<s>", " dé", "\u2581dé", "<unk>"], 300), "b a", "d a", "> <", ">  <", "q q ü"]);
      expect(r.tokens).toBeGreaterThan(10_000);
    }
  });

  it("matches with a Metaspace pre-tokenizer, string-format merges, lstrip/rstrip added tokens, ignore_merges, no byte fallback and no unk", () => {
    for (let seed = 10; seed <= 14; seed++) {
      const rand = rng(seed);
      const { merges, vocabList } = randomBpe(rand, alphabet, 200, { dropFromVocab: 0.2, extraMerges: [["c", "\u2581"]] });
      const json = tokenizerJson({
        vocabList: [...vocabList, "abcabc", "\u2581abcabc"],
        merges: merges.filter(([a, b]) => !a.includes(" ") && !b.includes(" ")).map(([a, b]) => `${a} ${b}`),
        added: [
          { content: "<L>", lstrip: true },
          { content: "<R>", rstrip: true, special: true },
          { content: "<LR>", lstrip: true, rstrip: true },
          { content: " da", normalized: true },
        ],
        model: { unk_token: null, byte_fallback: false, ignore_merges: true, fuse_unk: true },
        normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }] },
        pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: seed % 2 === 0 ? "first" : "always", split: false },
      });
      expectSame(json, [
        ...randomTexts(rand, ["<L>", "<R>", "<LR>", " da", "abcabc", "  <L>  ", "\t<R>\t"], 300),
        "abcabc",
        " abcabc",
        "x <L> y <R> z",
      ]);
    }
  });

  it("matches with Split pre-tokenizers that keep matches (invert) or split on a literal, and no normalizer", () => {
    for (let seed = 20; seed <= 23; seed++) {
      const rand = rng(seed);
      const { merges, vocabList } = randomBpe(rand, [...alphabet, " "], 200, { dropFromVocab: 0.1, extraMerges: [] });
      const pre_tokenizer = [
        { type: "Split", pattern: { Regex: "\\p{L}+|\\p{N}+|[^\\s\\p{L}\\p{N}]+" }, behavior: "Removed", invert: true },
        { type: "Split", pattern: { String: "x" }, behavior: "Removed", invert: false },
        { type: "Split", pattern: { String: "x" }, behavior: "Isolated", invert: true }, // keeps only the "x"s
        { type: "Split", pattern: { String: "x" }, behavior: "Isolated", invert: false },
      ][seed % 4];
      const json = tokenizerJson({
        vocabList: ["<unk>", ...vocabList, ...bytes([0x71, 0xf0, 0x9f, 0x98, 0x80])],
        merges,
        added: [{ content: "<unk>", special: true }],
        pre_tokenizer,
      });
      expectSame(json, randomTexts(rand, ["12", "345"], 300));
    }
  });

  it("leaves other tokenizer types to the library, saying why", () => {
    const bpe = tokenizerJson({ vocabList: ["<unk>", "a", "b", "ab"], merges: [["a", "b"]], added: [] });
    const wordPiece = {
      ...bpe,
      model: {
        type: "WordPiece",
        vocab: { "[UNK]": 0, a: 1 },
        unk_token: "[UNK]",
        continuing_subword_prefix: "##",
        max_input_chars_per_word: 100,
      },
    };
    expect(FastEncoder.fromLibrary(new Tokenizer(wordPiece, {}))).toBe("model is not BPE");
    const suffixed = { ...bpe, model: { ...bpe.model, end_of_word_suffix: "</w>" } };
    expect(FastEncoder.fromLibrary(new Tokenizer(suffixed, {}))).toMatch(/end_of_word_suffix/);
    const bert = { ...bpe, post_processor: { type: "BertProcessing", sep: ["[SEP]", 1], cls: ["[CLS]", 0] } };
    expect(FastEncoder.fromLibrary(new Tokenizer(bert, {}))).toMatch(/post_processor BertProcessing/);
  });
});
