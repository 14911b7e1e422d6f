// Curate throughput: MB/s of each stage on one thread, and of the whole pipeline on 2 worker
// threads, next to tokenize-only MB/s measured in the same run (the floor any pipeline that
// tokenizes pays). Reference: datatrove's MinHash signature stage ≈ 0.85 MB/s per core.
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildFilters,
  curate,
  curateSchema,
  formatExample,
  makeNormalizer,
  makeRedactor,
  minhashSignature,
  normalizeSchema,
  permutationSeeds,
  piiSchema,
  readInput,
  shingleHashes,
  type Example,
} from "@owntune/curate";
import { mulberry32 } from "@owntune/core";
import { loadDefaultTokenizer } from "@owntune/tokenizer";

const WORDS = (
  "the of and to in that it with as for was on be by this are from at or an have not but they which one you were all we " +
  "river town bridge market season harvest record council canal storm letter spice merchant library water summer travel " +
  "history farmer children family stone winter garden village morning evening people music story window country"
).split(" ");

function makeDocs(bytes: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const docs: string[] = [];
  let total = 0;
  while (total < bytes) {
    const paras: string[] = [];
    for (let p = 0, np = 2 + Math.floor(rand() * 5); p < np; p++) {
      const sents: string[] = [];
      for (let s = 0, ns = 3 + Math.floor(rand() * 6); s < ns; s++) {
        const w = Array.from({ length: 6 + Math.floor(rand() * 14) }, () => WORDS[Math.floor(rand() * WORDS.length)]!);
        sents.push(w.join(" ").replace(/^./, (c) => c.toUpperCase()) + ".");
      }
      paras.push(sents.join(" "));
    }
    if (rand() < 0.05) paras.push("Contact me at someone@example.com or 555-123-4567.");
    const doc = paras.join("\n\n");
    docs.push(doc);
    total += Buffer.byteLength(doc);
  }
  return docs;
}

const mb = (docs: readonly string[]) => docs.reduce((a, d) => a + Buffer.byteLength(d), 0) / 1e6;

function time(label: string, size: number, fn: () => void, reps = 1): number {
  fn(); // warm-up (JIT), result already checked by the caller
  const t = performance.now();
  for (let r = 0; r < reps; r++) fn();
  const s = (performance.now() - t) / 1000 / reps;
  const rate = size / s;
  console.log(`${label.padEnd(34)} ${rate.toFixed(2).padStart(8)} MB/s`);
  return rate;
}

export default async function bench(): Promise<void> {
  // OWNTUNE_BENCH_CURATE_MB sizes the corpus: worker start-up (each loads the tokenizer, ~2 s) is a
  // fixed cost, so the whole-pipeline rate only shows the steady state on tens of MB.
  const docs = makeDocs(Number(process.env.OWNTUNE_BENCH_CURATE_MB ?? 16) * 1e6, 1);
  const size = mb(docs);
  console.log(`${docs.length} synthetic documents, ${size.toFixed(2)} MB`);
  const tok = await loadDefaultTokenizer();

  // Check each stage's result before timing it.
  const filters = await buildFilters(
    curateSchema.shape.filters.parse({ gopher_quality: {}, gopher_repetition: {}, c4: {}, fineweb: {}, language: {} }),
  );
  const verdicts = filters.map((f) => docs.slice(0, 200).filter((d) => f.apply(d, true).keep).length);
  console.log(`kept of 200 by ${filters.map((f, i) => `${f.name} ${verdicts[i]}`).join(", ")}`);
  const seeds = permutationSeeds(112, 0);
  const s1 = minhashSignature(shingleHashes(docs[0]!, "word", 5), seeds);
  if (minhashSignature(shingleHashes(docs[0]!.toUpperCase(), "word", 5), seeds).some((v, i) => v !== s1[i]))
    throw new Error("minhash is not case-insensitive");
  const ids = tok.encode(docs[0]!);
  if (tok.decode(ids, { skipSpecial: true }) !== docs[0]) throw new Error("tokenizer round trip failed");

  const rates: Record<string, number> = {};
  const normalize = makeNormalizer(normalizeSchema.parse({}));
  rates.normalize = time("normalize (NFC, whitespace)", size, () => docs.forEach(normalize), 3);
  for (const f of filters) rates[f.name] = time(`filter ${f.name}`, size, () => docs.forEach((d) => f.apply(d, true)));
  const redact = makeRedactor(piiSchema.parse({}));
  rates.pii = time("PII redaction", size, () => docs.forEach((d) => redact(d, {})));
  rates.minhash = time("MinHash signature (112 perms, 5-grams)", size, () =>
    docs.forEach((d) => minhashSignature(shingleHashes(d, "word", 5), seeds)),
  );
  rates.tokenize = time("tokenize only (Gemma, encode)", size, () => docs.forEach((d) => tok.encode(d)));
  const chats: Example[] = docs.map((d) => {
    const [q, ...rest] = d.split("\n\n");
    return {
      kind: "chat",
      messages: [
        { role: "user", content: q! },
        { role: "assistant", content: rest.join("\n\n") || q! },
      ],
    };
  });
  rates.format = time("format chat (template + loss mask)", size, () =>
    chats.forEach((c) => formatExample(tok, c, { promptFormat: "chat" })),
  );

  // Whole pipeline, from a JSONL file: every filter, PII, exact + near dedup, chat formatting, packing, writing.
  const dir = await mkdtemp(join(tmpdir(), "owntune-bench-"));
  const file = join(dir, "in.jsonl");
  await writeFile(file, chats.map((c) => JSON.stringify({ messages: (c as { messages: unknown }).messages })).join("\n") + "\n");
  let rows = 0;
  for await (const r of readInput(file, "auto")) if (r.value) rows++;
  if (rows !== docs.length) throw new Error("reader lost rows");
  const fileMb = (await import("node:fs")).statSync(file).size / 1e6;
  for (const workers of [1, 2]) {
    const config = curateSchema.parse({
      inputs: [{ path: file }],
      seq_len: 2048,
      filters: { gopher_quality: {}, gopher_repetition: {}, fineweb: {}, language: {} },
      pii: {},
      dedup: { exact: true, near: {} },
      workers,
    });
    const s = await curate({ config, outDir: join(dir, `out-${workers}`) });
    const rate = fileMb / s.seconds;
    rates[`pipeline_${workers}`] = rate;
    console.log(
      `${`whole pipeline, ${workers} worker(s)`.padEnd(34)} ${rate.toFixed(2).padStart(8)} MB/s  (${s.manifest.counts.train_examples} train examples, ${s.seconds.toFixed(1)} s incl. start-up)`,
    );
  }
  console.log(
    `ratios: pipeline(2 workers)/tokenize-only ${(rates.pipeline_2! / rates.tokenize!).toFixed(2)}, ` +
      `2 workers/1 worker ${(rates.pipeline_2! / rates.pipeline_1!).toFixed(2)}, MinHash vs datatrove's 0.85 MB/s/core ${(rates.minhash! / 0.85).toFixed(1)}×`,
  );
}
