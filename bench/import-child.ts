// Start-up cost of a worker thread's imports, in a fresh process: `… bench/import-child.ts MODULE`
export {};
// imports MODULE (and curate's per-example processor), loads the tokenizer, encodes once, and prints
// { importSeconds, tokenizerSeconds, rssMiB } (RSS after all of it).
const t0 = performance.now();
const mod = (await import(process.argv[2]!)) as { loadDefaultTokenizer: () => Promise<{ encode(s: string): number[] }> };
await import("../packages/curate/src/processor.js");
const t1 = performance.now();
(await mod.loadDefaultTokenizer()).encode("warm up the encoder tables");
const t2 = performance.now();
console.log(JSON.stringify({ importSeconds: (t1 - t0) / 1000, tokenizerSeconds: (t2 - t1) / 1000, rssMiB: process.memoryUsage().rss / 2 ** 20 }));
