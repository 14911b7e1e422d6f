// Each filter against its published rule, on texts crafted to sit just inside or just outside a
// threshold. Expected verdicts come from the rule's text (Gopher App. A, C4 §2.2, FineWeb §3.3).
import { describe, expect, it } from "vitest";
import {
  blocklistSchema,
  c4Schema,
  finewebSchema,
  gopherQualitySchema,
  gopherRepetitionSchema,
  languageSchema,
  lengthFilterSchema,
} from "../config.js";
import { blocklistFilter } from "./blocklist.js";
import { c4Filter, countSentences } from "./c4.js";
import { splitLines, splitWords } from "./filter.js";
import { finewebFilter } from "./fineweb.js";
import { gopherQualityFilter } from "./gopher-quality.js";
import { duplicateNGramChars, gopherRepetitionFilter, topNGramChars } from "./gopher-repetition.js";
import { languageFilter } from "./language.js";
import { lengthFilter } from "./length.js";

const verdict = (r: { keep: boolean; reason?: string }) => (r.keep ? "keep" : (r as { reason: string }).reason);

// A varied English sentence (7 words, 2 stop words: "the", "of"), reused to build documents.
const sentences = [
  "The history of the river shaped every town nearby.",
  "Farmers learned to read the seasons with great care.",
  "Merchants carried salt and cloth along the old roads.",
  "Children played near the water during long summer days.",
  "A small library kept records of every flood and harvest.",
  "Bridges were rebuilt after storms damaged their wooden frames.",
  "Travelers wrote letters describing markets full of spices.",
  "The council met each spring to plan new canals.",
];
const prose = (n: number) =>
  Array.from({ length: n }, (_, i) => sentences[i % sentences.length]!.replace(/\.$/, ` number ${i}.`)).join(" ");

describe("word and line helpers", () => {
  it("splits punctuation off words as NLTK does, keeping inner apostrophes and '...'", () => {
    expect(splitWords("Don't stop... now, ok?")).toEqual(["Don't", "stop", "...", "now", ",", "ok", "?"]);
  });
  it("splits lines like Python's str.splitlines", () => {
    expect(splitLines("a\nb\r\nc\n")).toEqual(["a", "b", "c"]);
    expect(splitLines("a\n\nb")).toEqual(["a", "", "b"]);
    expect(splitLines("")).toEqual([]);
  });
});

describe("Gopher quality (Rae et al. 2021, App. A.1.1)", () => {
  const f = gopherQualityFilter(gopherQualitySchema.parse({}));
  const words = (n: number, w = "word") => Array.from({ length: n }, () => w).join(" ");
  it.each([
    ["a document of fluent prose", prose(10), "keep"],
    ["fewer than 50 words", "the cat and the dog " + words(40), "gopher_short_doc"],
    ["more than 100,000 words", "the and " + words(100_001, "cat"), "gopher_long_doc"],
    ["mean word length below 3", "the and " + words(60, "ab"), "gopher_below_avg_threshold"],
    ["mean word length above 10", "the and " + words(60, "extraordinarily"), "gopher_above_avg_threshold"],
    // 11 '#' over 70 tokens (60 words + the, and + …) > 0.1
    ["hash-to-word ratio above 0.1", prose(8) + " #".repeat(12), "gopher_too_many_hashes"],
    ["ellipsis-to-word ratio above 0.1", prose(4) + " wait…".repeat(8) + " The end.", "gopher_too_many_ellipsis"],
    [
      "over 90% of lines start with a bullet",
      Array.from({ length: 10 }, (_, i) => `• ${sentences[i % 8]}`).join("\n"),
      "gopher_too_many_bullets",
    ],
    [
      "90% of lines with a bullet is still fine",
      [...Array.from({ length: 9 }, (_, i) => `- ${sentences[i % 8]}`), sentences[0]].join("\n"),
      "keep",
    ],
    [
      "over 30% of lines end with an ellipsis",
      Array.from({ length: 10 }, (_, i) => sentences[i % 8]!.replace(/\.$/, i < 4 ? " and so on…" : ".")).join("\n"),
      "gopher_too_many_end_ellipsis",
    ],
    [
      "under 80% of words contain a letter",
      "the and " + Array.from({ length: 60 }, (_, i) => (i % 3 === 0 ? "word" : String(1000 + i))).join(" "),
      "gopher_below_alpha_threshold",
    ],
    ["fewer than 2 stop words", Array.from({ length: 60 }, (_, i) => `cat${i % 7}`).join(" ") + " the", "gopher_enough_stop_words"],
  ])("%s → %s", (_name, text, expected) => {
    expect(verdict(f.apply(text, false))).toBe(expected);
  });
});

describe("Gopher repetition (Rae et al. 2021, Table A1)", () => {
  const f = gopherRepetitionFilter(gopherRepetitionSchema.parse({}));
  it("keeps varied prose", () => expect(verdict(f.apply(sentences.join(" "), false))).toBe("keep"));
  it("drops when more than 30% of paragraphs are duplicates", () => {
    const paras = [sentences[0], sentences[1], sentences[0], sentences[0], sentences[2]].join("\n\n"); // 2 of 5 = 40%
    expect(verdict(f.apply(paras, false))).toBe("dup_para_frac");
  });
  it("drops when duplicated lines hold more than 30% of lines", () => {
    // Paragraphs all distinct (single newlines), lines: 4 of 10 repeat a short line.
    const lines = [...sentences.slice(0, 6), "ok.", "ok.", "ok.", "ok.", "ok."].join("\n");
    expect(verdict(f.apply(lines, false))).toBe("dup_line_frac");
  });
  it("counts the most common 2-gram's characters against 20% of the text", () => {
    const words = ["alpha", "beta", "alpha", "beta", "gamma", "delta"];
    // "alpha beta" (10 chars) × 2 = 20
    expect(topNGramChars(words, 2)).toBe(20);
    const text = "alpha beta ".repeat(6) + "gamma delta epsilon zeta eta theta iota kappa lambda mu";
    expect(verdict(f.apply(text, false))).toBe("top_2_gram");
  });
  it("counts words covered by repeated n-grams once, even where they overlap", () => {
    const w = "a b c d e a b c d e a b".split(" ");
    // 5-grams from index 5 on repeat earlier ones: indices 5..11 covered → 7 one-letter words.
    expect(duplicateNGramChars(w, 5)).toBe(7);
  });
  it("counts n-grams exactly as joined strings would, on random texts with many repeats", () => {
    // The string-keyed definition, written plainly: the filter finds n-grams by hashing word ids.
    const joined = (w: string[], n: number) => Array.from({ length: Math.max(0, w.length - n + 1) }, (_, i) => w.slice(i, i + n).join(" "));
    const naiveTop = (w: string[], n: number) => {
      const counts = new Map<string, number>();
      for (const g of joined(w, n)) counts.set(g, (counts.get(g) ?? 0) + 1);
      return Math.max(0, ...[...counts].map(([g, c]) => [...g].length * c));
    };
    const naiveDup = (w: string[], n: number) => {
      const seen = new Set<string>();
      const covered = new Set<number>();
      joined(w, n).forEach((g, i) => (seen.has(g) ? Array.from({ length: n }, (_, k) => covered.add(i + k)) : seen.add(g)));
      return [...covered].reduce((a, i) => a + [...w[i]!].length, 0);
    };
    const vocab = ["a", "bb", "ccc", "dé", "😀x", "the", "of"];
    let seed = 12345;
    const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    for (let t = 0; t < 200; t++) {
      const w = Array.from({ length: Math.floor(rand() * 120) }, () => vocab[Math.floor(rand() * (2 + (t % 6)))]!);
      for (const n of [2, 3, 4, 5, 8, 10]) {
        expect(topNGramChars(w, n)).toBe(naiveTop(w, n));
        expect(duplicateNGramChars(w, n)).toBe(naiveDup(w, n));
      }
    }
  });
  it("drops a text whose repeated 5-grams cover more than 15% of it", () => {
    const unit = "one two three four five six seven eight nine ten eleven twelve";
    const text = `${unit} ${unit} ${prose(2)}`;
    expect(verdict(f.apply(text, false))).toMatch(/^(top_\d_gram|duplicated_\d+_n_grams)$/);
  });
});

describe("C4 (Raffel et al. 2020, §2.2)", () => {
  const f = c4Filter(c4Schema.parse({}));
  const good = sentences.slice(0, 6).join("\n");
  it("keeps a page of 6 punctuated lines and leaves them unchanged", () => {
    expect(f.apply(good, true)).toEqual({ keep: true, text: good });
  });
  it("removes lines without terminal punctuation, with under 3 words, with 'javascript', or about cookies", () => {
    const page = [
      good,
      "Menu Home About",
      "Hi.",
      "Please enable JavaScript to view this page.",
      "This site uses cookies to work well.",
    ].join("\n");
    expect(f.apply(page, true)).toEqual({ keep: true, text: good });
  });
  it("removes Wikipedia citation marks", () => {
    const r = f.apply(good.replace("nearby.", "nearby.[12]").replace("care.", "care[citation needed]."), true);
    expect(r).toEqual({ keep: true, text: good });
  });
  it.each([
    ["fewer than 5 sentences", sentences.slice(0, 4).join("\n"), "too_few_sentences"],
    ["'lorem ipsum' anywhere", good + "\nLorem ipsum dolor sit amet, consectetur.", "lorem_ipsum"],
    ["a curly bracket", good + "\nThe function returns { value } to the caller.", "curly_bracket"],
  ])("drops a page with %s", (_n, text, reason) => {
    expect(verdict(f.apply(text, true))).toBe(reason);
  });
  it("counts sentences within a line", () => {
    expect(countSentences('He left. She stayed! Why? "Fine."')).toBe(4);
  });
});

describe("FineWeb (Penedo et al. 2024, §3.3)", () => {
  const f = finewebFilter(finewebSchema.parse({}));
  it("keeps prose", () => expect(verdict(f.apply(sentences.join("\n"), false))).toBe("keep"));
  it("drops when at most 12% of lines end in punctuation", () => {
    const lines = Array.from({ length: 10 }, (_, i) => sentences[i % 8]!.replace(/\.$/, i === 0 ? "." : " and more")).join("\n"); // 10%
    expect(verdict(f.apply(lines, false))).toBe("line_punct_ratio");
  });
  it("drops when 67% or more of lines have at most 30 characters", () => {
    const lines = [...Array.from({ length: 7 }, (_, i) => `Short line ${i}.`), sentences[0], sentences[1], sentences[2]].join("\n"); // 70%
    expect(verdict(f.apply(lines, false))).toBe("short_line_ratio");
  });
  it("drops when duplicated lines hold 1% or more of the characters", () => {
    expect(verdict(f.apply([...sentences, sentences[0]].join("\n"), false))).toBe("char_dup_ratio");
  });
  it("drops lists: more than 0.3 newlines per word", () => {
    // Lines longer than 30 characters, ending in ".", all distinct, but only 3 tokens each.
    const list = Array.from({ length: 12 }, (_, i) => `Supercalifragilistic${i}expialidocious antidisestablishmentarianism.`).join("\n");
    expect(verdict(f.apply(list, false))).toBe("list_ratio");
  });
});

describe("length, blocklist and language", () => {
  it("bounds characters (code points) and words", () => {
    const f = lengthFilter(lengthFilterSchema.parse({ min_chars: 5, max_chars: 10, min_words: 2 }));
    expect(verdict(f.apply("😀😀😀😀", false))).toBe("too_few_chars"); // 4 code points, 8 UTF-16 units
    expect(verdict(f.apply("abcdefghijk", false))).toBe("too_many_chars");
    expect(verdict(f.apply("abcdef !", false))).toBe("too_few_words");
    expect(verdict(f.apply("abc def", false))).toBe("keep");
  });
  it("matches blocklisted words whole and case-insensitively, and regular expressions", () => {
    const f = blocklistFilter(blocklistSchema.parse({ words: ["spam"], patterns: ["buy\\s+now"] }));
    expect(verdict(f.apply("This is SPAM.", false))).toBe("word");
    expect(verdict(f.apply("No spammer here", false))).toBe("keep");
    expect(verdict(f.apply("Buy  now!", false))).toBe("pattern");
  });
  it("identifies languages with fastText lid.176 and keeps only the configured ones", async () => {
    const f = await languageFilter(languageSchema.parse({ languages: ["en"] }));
    expect(verdict(f.apply("The weather was pleasant and the market was full of people.", false))).toBe("keep");
    expect(verdict(f.apply("Le temps était agréable et le marché était plein de monde.", false))).toBe("lang_fr");
    expect(verdict(f.apply("Das Wetter war angenehm und der Markt war voller Menschen.", false))).toBe("lang_de");
  });
});
