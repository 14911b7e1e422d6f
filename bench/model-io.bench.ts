// Model I/O throughput: tokenizer load and encode — our FastEncoder next to @huggingface/tokenizers on
// the same ~1.5 kB documents (prose, code, 13 languages), ids checked identical first — and
// safetensors write/read per dtype. Results are checked before they are timed.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { FastEncoder, GemmaTokenizer, defaultTokenizerDir, roundToBf16, withSafetensors, writeSafetensors, type FloatDtype } from "@owntune/model";

function seconds(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function secondsAsync(fn: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

/** Documents of ~`size` characters: consecutive pieces joined by `sep`. */
function documents(pieces: readonly string[], size: number, sep: string): string[] {
  const docs: string[] = [];
  let cur = "";
  for (const p of pieces) {
    cur = cur ? cur + sep + p : p;
    if (cur.length >= size) {
      docs.push(cur);
      cur = "";
    }
  }
  if (cur) docs.push(cur);
  return docs;
}

/**
 * ~1.5 kB documents of three kinds, from files pinned with the typescript devDependency: English prose
 * (MDN's descriptions in lib.dom.d.ts, paragraphs of one line each, as web text has), code (lib.es5.d.ts)
 * and multilingual prose (the compiler's messages in 13 languages).
 */
function corpora(): Record<string, string[]> {
  const tsLib = dirname(createRequire(import.meta.url).resolve("typescript"));
  const dom = readFileSync(join(tsLib, "lib.dom.d.ts"), "utf8");
  const descriptions = [...dom.matchAll(/\/\*\*([\s\S]*?)\*\//g)]
    .map((m) => m[1]!.split("\n").map((l) => l.replace(/^\s*\*\s?/, "")).filter((l) => !l.startsWith("@") && !l.startsWith("[MDN")).join(" ").replace(/\s+/g, " ").trim())
    .filter((d) => d.length > 40);
  const prose = documents(documents(descriptions.slice(0, 2000), 400, " "), 1500, "\n\n");
  const code = documents(readFileSync(join(tsLib, "lib.es5.d.ts"), "utf8").split("\n"), 1500, "\n");
  const messages: string[] = [];
  for (const lang of ["cs", "de", "es", "fr", "it", "ja", "ko", "pl", "pt-br", "ru", "tr", "zh-cn", "zh-tw"]) {
    const all = Object.values(JSON.parse(readFileSync(join(tsLib, lang, "diagnosticMessages.generated.json"), "utf8"))) as string[];
    messages.push(...all.slice(0, 150));
  }
  const multilingual = documents(messages, 1500, " ");
  return { "English prose": prose, code, multilingual };
}

const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

async function tokenizerBench(): Promise<void> {
  let tok!: GemmaTokenizer;
  const load = await secondsAsync(async () => {
    tok = await GemmaTokenizer.load(defaultTokenizerDir());
  });
  let slow: string | undefined;
  const build = seconds(() => void (slow = tok.slowEncodeReason));
  if (slow !== undefined) throw new Error(`the fast encoder is not in use: ${slow}`);
  console.log(`tokenizer load (tokenizer.json 33 MB): ${load.toFixed(2)} s, then fast-encoder tables: ${build.toFixed(2)} s`);
  // The reference: @huggingface/tokenizers on its own, as GemmaTokenizer.encode used it before.
  const json = JSON.parse(readFileSync(join(defaultTokenizerDir(), "tokenizer.json"), "utf8"));
  const config = JSON.parse(readFileSync(join(defaultTokenizerDir(), "tokenizer_config.json"), "utf8"));
  const library = new Tokenizer(json, config);
  const libEncode = (d: string) => library.encode(d, { add_special_tokens: false }).ids;
  const all: string[] = [];
  for (const [name, docs] of Object.entries(corpora())) {
    all.push(...docs);
    const bytes = docs.reduce((a, d) => a + Buffer.byteLength(d), 0);
    const mb = bytes / 1e6;
    // A fresh encoder (empty chunk cache) for the cold pass, timed before anything else sees this text.
    const fresh = FastEncoder.fromLibrary(library);
    if (typeof fresh === "string") throw new Error(fresh);
    const cold: number[][] = [];
    const tCold = seconds(() => docs.forEach((d) => cold.push(fresh.encode(d))));
    let tokens = 0;
    docs.forEach((d, i) => {
      const want = libEncode(d);
      tokens += want.length;
      if (!sameIds(want, cold[i]!) || !sameIds(want, tok.encode(d, { addBos: false }))) throw new Error(`${name}: ids differ from the library on document ${i}`);
    });
    const tLib = seconds(() => docs.forEach((d) => void libEncode(d)));
    const tWarm = seconds(() => docs.forEach((d) => void tok.encode(d, { addBos: false })));
    console.log(
      `${name}: ${docs.length} docs, ${mb.toFixed(2)} MB, ${(bytes / tokens).toFixed(2)} bytes/token, ids identical — ` +
        `library ${(mb / tLib).toFixed(2)} MB/s, ours cold ${(mb / tCold).toFixed(1)} MB/s, warm ${(mb / tWarm).toFixed(1)} MB/s ` +
        `(${(tLib / tCold).toFixed(0)}× / ${(tLib / tWarm).toFixed(0)}×)`,
    );
  }
  // Check: exact round trip on every document (except those with a literal ▁, which decodes as a space).
  for (const d of all) {
    if (!d.includes("▁") && tok.decode(tok.encode(d, { addBos: false })) !== d) throw new Error("round trip failed");
  }
  const big = all.join("\n\n");
  const mb = Buffer.byteLength(big) / 1e6;
  const tMany = seconds(() => void tok.encodeBatch(all, { addBos: false }));
  const tOne = seconds(() => void tok.encode(big, { addBos: false }));
  console.log(`all ${all.length} documents (${mb.toFixed(2)} MB), warm: ${(mb / tMany).toFixed(1)} MB/s; as one string: ${(mb / tOne).toFixed(1)} MB/s`);
}

async function safetensorsBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "owntune-bench-st-"));
  try {
    const n = 32 << 20; // 32 M values
    const values = new Float32Array(n);
    for (let i = 0; i < n; i++) values[i] = Math.sin(i) * 0.02;
    const rows: string[] = [];
    const readTimes: Record<string, number> = {};
    for (const dtype of ["F32", "BF16", "F16"] as FloatDtype[]) {
      const path = join(dir, `${dtype}.safetensors`);
      const w = await secondsAsync(() => writeSafetensors(path, [{ name: "w", dtype, shape: [n] }], () => values));
      let got!: Float32Array;
      const r = await secondsAsync(() => withSafetensors(path, async (f) => void (got = await f.read("w"))));
      if (dtype === "BF16") {
        const want = roundToBf16(values.subarray(0, 1 << 20));
        for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) throw new Error(`bf16 round trip differs at ${i}`);
      } else if (dtype === "F32" && got[12345] !== values[12345]) throw new Error("f32 round trip differs");
      readTimes[dtype] = r;
      const mb = (n * (dtype === "F32" ? 4 : 2)) / 1e6;
      rows.push(`${dtype}: write ${(n / w / 1e6).toFixed(0)} M values/s (${(mb / w).toFixed(0)} MB/s on disk, fsync included), read+decode ${(n / r / 1e6).toFixed(0)} M values/s`);
    }
    console.log(`safetensors, one tensor of ${n / (1 << 20)} Mi values:`);
    for (const row of rows) console.log(`  ${row}`);
    console.log(`  read time BF16 ÷ F32: ${(readTimes.BF16! / readTimes.F32!).toFixed(2)}× (half the bytes, plus widening)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function run(): Promise<void> {
  await tokenizerBench();
  await safetensorsBench();
}
