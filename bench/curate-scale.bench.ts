// Curation at scale: MB/s and peak RSS (each run in its own process, worker threads included) on real
// mixed text and on 20 MB / 200 MB / 2 GB of generated chats, with 1 and 2 worker threads; `--shard i/4`
// × 4 + `--merge` on one machine; the packing-window rule's cost. The same stages everywhere: length
// filter, PII, exact + MinHash near dedup, chat/text formatting, BFD packing at 2048 — plus, beside
// them in the same run, `bench curate`'s whole-pipeline config on its synthetic prose (the reference).
// OWNTUNE_BENCH_SCALE_PARTS (default "real,generated,packing,imports") picks the parts,
// OWNTUNE_BENCH_SCALE_SIZES (MB, default "20,200,2000") the generated sizes, and
// OWNTUNE_BENCH_SCALE_BIG_WORKERS (default "1,2") the worker counts from 1000 MB up; results are checked
// (rows read = lines written, dedup drops found, spill = in-memory where both run) before they count.
import { execFile } from "node:child_process";
import { mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { mulberry32 } from "@owntune/core";
import { loadDefaultTokenizer } from "@owntune/tokenizer";
import { PACK_WINDOW_ITEMS, planRows } from "@owntune/curate";
import { makeDocs, realTextJsonl, writeSyntheticJsonl } from "./corpora.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");

interface ChildResult {
  bytesRead: number;
  seconds: number;
  cpuSeconds: number;
  maxRssMiB: number;
  counts?: Record<string, number>;
  efficiency?: number;
}

async function child(job: object): Promise<ChildResult> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--conditions=@owntune/source", "--import", "tsx", join(here, "curate-child.ts"), JSON.stringify(job)],
    {
      cwd: root,
      maxBuffer: 1 << 24,
    },
  );
  return JSON.parse(stdout.trim().split("\n").pop()!) as ChildResult;
}

const stages = (path: string, workers: number) => ({
  inputs: [{ path }],
  seq_len: 2048,
  overlong: "truncate",
  filters: { length: { min_words: 5 } },
  pii: {},
  dedup: { exact: true, near: {} },
  workers,
});

const loadAvg = async () =>
  (await import("node:os"))
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(" ");

function line(label: string, mb: number, r: ChildResult, extra = ""): void {
  console.log(
    `${label.padEnd(44)} ${(mb / r.seconds).toFixed(2).padStart(6)} MB/s  ${r.seconds.toFixed(1).padStart(7)} s  ${(mb / r.cpuSeconds).toFixed(2).padStart(6)} MB/CPU-s  peak RSS ${r.maxRssMiB.toFixed(0).padStart(5)} MiB${extra}`,
  );
}

export default async function bench(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "owntune-bench-scale-"));
  try {
    console.log(`load average before: ${await loadAvg()}`);
    const only = (part: string) => (process.env.OWNTUNE_BENCH_SCALE_PARTS ?? "real,generated,packing,imports").split(",").includes(part);
    // Real mixed text, and bench curate's synthetic prose of the same size as the reference beside it.
    const real = realTextJsonl(20e6);
    const realFile = join(dir, "real.jsonl");
    await writeFile(realFile, real.lines.join("\n") + "\n");
    const realMb = (await stat(realFile)).size / 1e6;
    console.log(
      `real text: ${real.lines.length} files (${real.files.python} Python sources from ${real.sources[0]}, ${real.files.docs} docs from ${real.sources[1]}), ${realMb.toFixed(1)} MB`,
    );
    const proseFile = join(dir, "prose.jsonl");
    const proseBytes = await writeSyntheticJsonl(proseFile, 20e6, 1);
    const benchCurate = (workers: number) => ({
      inputs: [{ path: proseFile }],
      seq_len: 2048,
      filters: { gopher_quality: {}, gopher_repetition: {}, fineweb: {}, language: {} },
      pii: {},
      dedup: { exact: true, near: {} },
      workers,
    });
    for (const workers of only("real") ? [1, 2] : []) {
      const r = await child({ config: stages(realFile, workers), outDir: join(dir, `real-${workers}`) });
      if (r.counts!.rows_read !== real.lines.length || !(r.counts!.examples_kept! > 0)) throw new Error("real text: rows lost");
      const p = await child({ config: stages(proseFile, workers), outDir: join(dir, `prose-${workers}`) });
      const b = await child({ config: benchCurate(workers), outDir: join(dir, `bench-${workers}`) });
      line(`real text ${realMb.toFixed(0)} MB, ${workers} worker(s)`, realMb, r);
      line(`synthetic prose 20 MB, same stages, ${workers} w`, proseBytes / 1e6, p);
      // Ratios per CPU-second too: on a shared machine the wall-clock ratio moves with others' load.
      const ratio = (x: ChildResult, y: ChildResult, xMb: number, yMb: number, k: "seconds" | "cpuSeconds") =>
        (xMb / x[k] / (yMb / y[k])).toFixed(2);
      line(
        `bench curate's config, synthetic prose, ${workers} w`,
        proseBytes / 1e6,
        b,
        `   real/bench ${ratio(r, b, realMb, proseBytes / 1e6, "seconds")} wall, ${ratio(r, b, realMb, proseBytes / 1e6, "cpuSeconds")} CPU`,
      );
    }

    // Generated chats at growing sizes: memory stays flat once the kept examples spill (past 1 GiB).
    const sizes = only("generated") ? (process.env.OWNTUNE_BENCH_SCALE_SIZES ?? "20,200,2000").split(",").map(Number) : [];
    for (const size of sizes) {
      const file = join(dir, `gen-${size}.jsonl`);
      const bytes = await writeSyntheticJsonl(file, size * 1e6, 7);
      const workerCounts = size >= 1000 ? (process.env.OWNTUNE_BENCH_SCALE_BIG_WORKERS ?? "1,2").split(",").map(Number) : [1, 2];
      for (const workers of workerCounts) {
        const r = await child({ config: stages(file, workers), outDir: join(dir, `gen-${size}-${workers}`) });
        if (!(r.counts!.rows_read! > 0 && r.counts!.examples_kept! > 0)) throw new Error(`generated ${size} MB: no rows kept`);
        line(`generated ${size} MB, ${workers} worker(s)`, bytes / 1e6, r, `   packing ${(100 * r.efficiency!).toFixed(2)}%`);
        // The flat-memory goal: an input 4× the 512 MiB memory budget and more stays under 2 GiB.
        if (size >= 2000 && r.maxRssMiB > 2048)
          throw new Error(`peak RSS ${r.maxRssMiB.toFixed(0)} MiB at ${size} MB of input: over the 2 GiB bound`);
        await rm(join(dir, `gen-${size}-${workers}`), { recursive: true, force: true });
      }
      // --shard i/4 × 4 one after another on this machine, then --merge (200 MB only).
      if (size === 200) {
        let shardSeconds = 0;
        let shardRss = 0;
        for (let i = 0; i < 4; i++) {
          const s = await child({ config: stages(file, 2), outDir: join(dir, "parts", String(i)), shard: { index: i, count: 4 } });
          shardSeconds += s.seconds;
          shardRss = Math.max(shardRss, s.maxRssMiB);
          console.log(
            `  shard ${i}/4: ${s.seconds.toFixed(1)} s, ${(s.bytesRead / 1e6).toFixed(1)} MB, peak RSS ${s.maxRssMiB.toFixed(0)} MiB`,
          );
        }
        const m = await child({ config: stages(file, 2), outDir: join(dir, "merged"), merge: join(dir, "parts") });
        const single = await child({ config: stages(file, 2), outDir: join(dir, "single-200") });
        if (m.counts!.examples_kept !== single.counts!.examples_kept || m.efficiency !== single.efficiency)
          throw new Error("merge differs from one process");
        console.log(
          `  4 shards ${shardSeconds.toFixed(1)} s in all (peak RSS ${shardRss.toFixed(0)} MiB) + merge ${m.seconds.toFixed(1)} s (peak RSS ${m.maxRssMiB.toFixed(0)} MiB) vs one process ${single.seconds.toFixed(1)} s`,
        );
        await rm(join(dir, "parts"), { recursive: true, force: true });
      }
      await rm(file, { force: true });
    }

    if (only("packing")) await packingWindows();
    if (only("imports")) await workerImports();
    console.log(`load average after: ${await loadAvg()}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The packing-window rule: BFD over windows of PACK_WINDOW_ITEMS examples vs one window, on 2.5 M lengths drawn from generated chats. */
async function packingWindows(): Promise<void> {
  const tok = await loadDefaultTokenizer();
  const sample = makeDocs(4e6, 3).map((d) => Math.min(2048, tok.encode(d).length + 8));
  const rand = mulberry32(9);
  const lengths = Int32Array.from({ length: 2_500_000 }, () => sample[Math.floor(rand() * sample.length)]!);
  const total = lengths.reduce((a, b) => a + b, 0);
  const eff = (window: number) => {
    const t = performance.now();
    const rows = planRows(lengths, 2048, true, { window }).rowStart.length - 1;
    return { e: total / (rows * 2048), s: (performance.now() - t) / 1000 };
  };
  const w = eff(PACK_WINDOW_ITEMS);
  const one = eff(lengths.length);
  console.log(
    `packing 2.5 M examples: windows of ${PACK_WINDOW_ITEMS} ${(100 * w.e).toFixed(3)}% (${w.s.toFixed(1)} s), one window ${(100 * one.e).toFixed(3)}% (${one.s.toFixed(1)} s): loss ${(100 * (one.e - w.e)).toFixed(3)} points`,
  );
}

/**
 * What a curate worker thread loads: the whole model package (TensorFlow.js included) as before, or only
 * its own imports (@owntune/core and @owntune/tokenizer) as now; three fresh processes each, best figure.
 */
async function workerImports(): Promise<void> {
  for (const [entry, label] of [
    ["@owntune/model", "+ @owntune/model"],
    ["", "core + tokenizer"],
  ] as const) {
    const runs: Array<{ importSeconds: number; tokenizerSeconds: number; rssMiB: number }> = [];
    for (let i = 0; i < 3; i++) {
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ["--conditions=@owntune/source", "--import", "tsx", join(here, "import-child.ts"), ...(entry ? [entry] : [])],
        { cwd: root },
      );
      runs.push(JSON.parse(stdout.trim().split("\n").pop()!));
    }
    const best = (k: "importSeconds" | "tokenizerSeconds" | "rssMiB") => Math.min(...runs.map((r) => r[k]));
    console.log(
      `worker imports ${label.padEnd(20)} ${best("importSeconds").toFixed(2)} s, tokenizer load + first encode ${best("tokenizerSeconds").toFixed(2)} s, RSS ${best("rssMiB").toFixed(0)} MiB`,
    );
  }
}
