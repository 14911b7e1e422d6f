// Model I/O throughput: tokenizer load and encode (one long text vs many documents, the shape
// curation has), and safetensors write/read per dtype. Results are checked before they are timed.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { GemmaTokenizer, defaultTokenizerDir, roundToBf16, withSafetensors, writeSafetensors, type FloatDtype } from "@owntune/model";

const here = dirname(fileURLToPath(import.meta.url));

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

/** ~1 MB of mixed text: the project's own docs (English, code, tables) plus multilingual lines. */
function corpus(): string[] {
  const docs: string[] = [];
  const shared = join(here, "..", "..", "shared");
  const sources = [join(shared, "design.md"), join(shared, "spec", "gemma4.md"), join(shared, "spec", "gguf.md"), join(here, "..", "README.md")];
  for (const f of sources) {
    try {
      docs.push(...readFileSync(f, "utf8").split(/\n(?=#)/));
    } catch {
      // a missing doc only shrinks the corpus
    }
  }
  for (const f of readdirSync(join(here, "..", "packages", "model", "src")).filter((n) => n.endsWith(".ts"))) {
    docs.push(readFileSync(join(here, "..", "packages", "model", "src", f), "utf8"));
  }
  docs.push("Grüße aus Köln — 日本語のテキスト, русский текст, العربية, हिन्दी. 👩‍👩‍👧‍👦 🤗".repeat(40));
  const out: string[] = [];
  while (out.reduce((a, d) => a + d.length, 0) < 1_000_000) out.push(...docs);
  return out;
}

async function tokenizerBench(): Promise<void> {
  let tok!: GemmaTokenizer;
  const load = await secondsAsync(async () => {
    tok = await GemmaTokenizer.load(defaultTokenizerDir());
  });
  const docs = corpus();
  const big = docs.join("\n\n");
  const mb = Buffer.byteLength(big) / 1e6;
  // Check: exact round trip on every document (except those with a literal ▁, which decodes as a space).
  for (const d of docs.slice(0, 200)) {
    if (!d.includes("▁") && tok.decode(tok.encode(d, { addBos: false })) !== d) throw new Error("round trip failed");
  }
  // First pass: BPE's word cache is cold (what a curation run sees on fresh text); second: warm.
  const passes: number[] = [];
  let tokens = 0;
  for (let pass = 0; pass < 2; pass++) {
    tokens = 0;
    passes.push(seconds(() => {
      for (const ids of tok.encodeBatch(docs, { addBos: false })) tokens += ids.length;
    }));
  }
  const tMany = passes[1]!;
  const tOne = seconds(() => void tok.encode(big, { addBos: false }));
  console.log(`tokenizer load (tokenizer.json 33 MB): ${load.toFixed(2)} s`);
  console.log(`encode ${docs.length} documents (${mb.toFixed(2)} MB), cold cache: ${(mb / passes[0]!).toFixed(2)} MB/s`);
  console.log(`encode the same documents again, warm cache: ${(mb / tMany).toFixed(2)} MB/s, ${(tokens / tMany / 1e3).toFixed(0)}k tokens/s, ${(Buffer.byteLength(big) / tokens).toFixed(2)} bytes/token`);
  console.log(`encode the same text as one string, warm: ${(mb / tOne).toFixed(2)} MB/s (documents ÷ one string: ${(tOne / tMany).toFixed(2)}×)`);
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
