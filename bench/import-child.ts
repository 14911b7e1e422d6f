// Start-up cost of a curate worker thread's imports, in a fresh process: `… bench/import-child.ts [MODULE]`
// imports MODULE when given (the whole model package, as curate's workers once did), then curate's
// per-example processor (what a worker imports now: @owntune/core and @owntune/tokenizer), loads the
// tokenizer, encodes once, and prints { importSeconds, tokenizerSeconds, rssMiB } (RSS after all of it).
export {};
const t0 = performance.now();
if (process.argv[2]) await import(process.argv[2]);
await import("../packages/curate/src/processor.js");
const { loadDefaultTokenizer } = await import("@owntune/tokenizer");
const t1 = performance.now();
(await loadDefaultTokenizer()).encode("warm up the encoder tables");
const t2 = performance.now();
console.log(
  JSON.stringify({ importSeconds: (t1 - t0) / 1000, tokenizerSeconds: (t2 - t1) / 1000, rssMiB: process.memoryUsage().rss / 2 ** 20 }),
);
