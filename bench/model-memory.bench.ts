// Peak memory of a real-size model: a checkpoint with Gemma 4 E2B's layer shapes (the real 262,144-row
// embedding and per-layer-embedding tables) but 2 and 4 layers, written by `initModel` (bf16), then
// (a) loaded and scored on 128 tokens in a child process per weight placement, (b) exported with
// `owntune export --merged` under /usr/bin/time. Per-layer slopes give projections to the full E2B
// (35 layers) and E4B (42 layers). Each child checks its result (finite NLL, files written) first.
//
//   pnpm bench model-memory            (env: OWNTUNE_BENCH_LAYERS=2,4  OWNTUNE_BENCH_PLACEMENTS=host,host-bf16
//                                            OWNTUNE_BENCH_EXPORT=1  OWNTUNE_BENCH_DIR=reuse checkpoints here)
//   OWNTUNE_BENCH_FULL=e2b|e4b pnpm bench model-memory   the full model instead (9.3 / 14.9 GB bf16): load with the
//                                            default placement, score a short text; per-layer-table gathers
//                                            from the file against a bf16 copy in memory.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  ChunkedRows,
  configToJson,
  describeBackend,
  expectedTensors,
  FileRows,
  gemma4E2b,
  gemma4E4b,
  initBackend,
  initModel,
  loadGemma4,
  loadModelDir,
  openCheckpoint,
  parseGemma4Config,
  readGemma4Config,
  scoreIds,
  type Gemma4Config,
} from "@owntune/model";
import { formatBytes } from "@owntune/core";

const CHILD = "OWNTUNE_BENCH_MEMORY_CHILD";
const S = "sliding_attention";
const F = "full_attention";
const SCORED_TOKENS = 128;

/**
 * E2B's shapes with `layers` layers. 2: [S, F], no KV sharing. 4: [S, F, S, F] with the last two
 * KV-shared (first shared layer f = 2: f−1 full, f−2 sliding, the order llama.cpp runs), so the
 * 2 → 4 slope is two shared (double-wide MLP) layers, the kind 20 of E2B's 35 layers are.
 */
export function e2bLayers(layers: number): Gemma4Config {
  const types = Array.from({ length: layers }, (_, i) => (i % 2 === 0 ? S : F));
  return parseGemma4Config({
    ...configToJson(gemma4E2b()),
    num_hidden_layers: layers,
    layer_types: types,
    num_kv_shared_layers: layers >= 4 ? layers - 2 : 0,
  });
}

/** Parameters by where the loader keeps them: token embedding, PLE table, linears, the rest. */
function paramsByKind(c: Gemma4Config): { embedding: number; ple: number; linear: number; other: number } {
  const out = { embedding: 0, ple: 0, linear: 0, other: 0 };
  for (const t of expectedTensors(c)) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.name === "embed_tokens.weight") out.embedding += n;
    else if (t.name === "embed_tokens_per_layer.weight") out.ple += n;
    else if (t.role === "linear") out.linear += n;
    else out.other += n;
  }
  return out;
}

/** Bytes per parameter a loaded model holds, by kind (as the child measured them on the model). */
type Held = { embedding: number; ple: number; linear: number };

function heldBytes(c: Gemma4Config, perParam: Held): number {
  const p = paramsByKind(c);
  return p.embedding * perParam.embedding + p.ple * perParam.ple + p.linear * perParam.linear + 4 * p.other;
}

interface ChildResult {
  backend: string;
  baseline: number;
  afterLoad: number;
  peak: number;
  device: number;
  loadSeconds: number;
  forwardWall: number;
  forwardCpu: number;
  nll: number;
  /** Bytes per parameter held, by kind. */
  held: Held;
  storage: unknown;
}

/** In the child: load the checkpoint with one placement, score 128 tokens (or `ids`), report memory and time. */
async function child(dir: string, placement: string, given?: number[]): Promise<void> {
  const info = await initBackend({ backend: "wasm", threads: 1 });
  const baseline = process.memoryUsage().rss;
  const config = await readGemma4Config(join(dir, "config.json"));
  const t0 = performance.now();
  const ckpt = await openCheckpoint(dir, { config });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const model = await loadGemma4(config, ckpt, { placement: placement as any });
  await ckpt.close();
  const loadSeconds = (performance.now() - t0) / 1000;
  const afterLoad = process.memoryUsage().rss;
  const kinds = paramsByKind(config);
  const m = model as unknown as { embedding: { bytes: number }; ple?: { bytes?: number; data?: Float32Array }; storage?: unknown };
  const held: Held = {
    embedding: m.embedding.bytes / kinds.embedding,
    ple: (m.ple?.bytes ?? m.ple?.data?.byteLength ?? 0) / kinds.ple,
    linear: Object.values(model.linears.bytes()).reduce((a, b) => a + b, 0) / kinds.linear,
  };
  const device = tf.memory().numBytes;
  const ids = given ?? Array.from({ length: SCORED_TOKENS }, (_, i) => 3 + ((i * 7919 + 13) % (config.vocab_size - 3)));
  const c0 = process.cpuUsage();
  const t1 = performance.now();
  const r = scoreIds(model, ids);
  const forwardWall = (performance.now() - t1) / 1000;
  const cpu = process.cpuUsage(c0);
  if (!Number.isFinite(r.nll)) throw new Error("E2B-shaped forward gave a non-finite NLL");
  const peak = process.resourceUsage().maxRSS * 1024;
  const out: ChildResult = {
    backend: describeBackend(info),
    baseline,
    afterLoad,
    peak,
    device,
    loadSeconds,
    forwardWall,
    forwardCpu: (cpu.user + cpu.system) / 1e6,
    nll: r.nll,
    held,
    storage: m.storage ?? "before: linears as placed, embedding f32 on the backend, PLE f32 in memory",
  };
  console.log(JSON.stringify(out));
  model.dispose();
}

function runChild(dir: string, placement: string, ids?: number[], mode = "model"): ChildResult {
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, "model-memory"], {
    env: { ...process.env, [CHILD]: JSON.stringify({ dir, placement, ids, mode }) },
    encoding: "utf8",
    maxBuffer: 1 << 24,
  });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (r.status !== 0 || !line) throw new Error(`memory child (${placement}) failed (${r.status}): ${r.stderr.slice(-3000)}`);
  return JSON.parse(line) as ChildResult;
}

/** `owntune export` under /usr/bin/time -v: peak RSS (bytes) and wall seconds; checks the files exist. */
function runExport(modelDir: string, outDir: string, merged: boolean): { peak: number; seconds: number } {
  rmSync(outDir, { recursive: true, force: true });
  const args = [
    "-v",
    process.execPath,
    "--conditions=@owntune/source",
    "--import",
    "tsx",
    "packages/cli/src/main.ts",
    "export",
    "--model",
    modelDir,
    "--out",
    outDir,
    "--quant",
    "BF16",
    "--no-verify",
  ];
  if (merged) args.push("--merged");
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", args, { encoding: "utf8", maxBuffer: 1 << 24 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`owntune export failed (${r.status}): ${r.stderr.slice(-3000)}`);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!m) throw new Error("no maximum RSS in /usr/bin/time output");
  if (!existsSync(join(outDir, "model-BF16.gguf"))) throw new Error("export wrote no GGUF");
  if (merged && !readdirSync(join(outDir, "merged")).some((f) => f.endsWith(".safetensors")))
    throw new Error("export wrote no merged safetensors");
  return { peak: Number(m[1]) * 1024, seconds };
}

/**
 * In the child: the per-layer table gathered for 512 tokens from the checkpoint file (positioned reads)
 * and from a bf16 copy loaded into memory; reports times and what the copy costs in RSS.
 */
async function pleChild(dir: string): Promise<void> {
  const name = "embed_tokens_per_layer.weight";
  const ckpt = await openCheckpoint(dir);
  const range = ckpt.fileRows(name)!;
  const ids = Array.from({ length: 512 }, (_, i) => (i * 104_729 + 7) % range.rows);
  const out = new Float32Array(ids.length * range.width);
  const time = (f: () => void) => {
    const t = performance.now();
    f();
    return (performance.now() - t) / 1000;
  };
  const file = new FileRows(range);
  const fileFirst = time(() => file.gather(ids, out));
  const fileWarm = Math.min(...[0, 1, 2].map(() => time(() => file.gather(ids, out))));
  const want = out.slice();
  file.dispose();
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  const mem = await ChunkedRows.load((s, n) => ckpt.readRows(name, s, n), range.rows, range.width, "bf16");
  const loadSeconds = (performance.now() - t0) / 1000;
  const copyRss = process.memoryUsage().rss - before;
  const memWarm = Math.min(...[0, 1, 2].map(() => time(() => mem.gather(ids, out))));
  if (out.some((v, i) => v !== want[i])) throw new Error("file and memory gathers differ");
  await ckpt.close();
  console.log(
    JSON.stringify({ rows: range.rows, width: range.width, fileFirst, fileWarm, memWarm, loadSeconds, copyRss, chunks: mem.chunkCount }),
  );
}

/** The full E2B or E4B: write it (once), load it with the default placement, score a short text; then the PLE gather comparison. */
async function full(which: "e2b" | "e4b"): Promise<void> {
  const root = process.env.OWNTUNE_BENCH_DIR ?? join(tmpdir(), "owntune-bench-memory");
  const dir = join(root, `${which}-full`);
  const config = which === "e4b" ? gemma4E4b() : gemma4E2b();
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(", ")}`,
  );
  if (!existsSync(join(dir, "config.json"))) {
    const t0 = performance.now();
    await initModel({ outDir: dir, config, seed: 1, dtype: "bf16" });
    console.log(`wrote ${dir} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const size = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
  const md = await loadModelDir(dir);
  await md.checkpoint.close();
  const text = "The quick brown fox jumps over the lazy dog. Gemma runs on a laptop.";
  const ids = md.tokenizer.encode(text);
  console.log(`full ${which}: ${(size / 1e9).toFixed(2)} GB on disk; scoring ${ids.length} tokens: ${JSON.stringify(text)}`);
  const r = runChild(dir, "auto", ids);
  console.log(`storage ${JSON.stringify(r.storage)}, held bytes per parameter ${JSON.stringify(r.held)}`);
  console.log(
    `| full ${which}, auto | baseline ${gib(r.baseline)} | after load ${gib(r.afterLoad)} | peak ${gib(r.peak)} | load ${r.loadSeconds.toFixed(0)} s | score ${r.forwardWall.toFixed(1)} s (CPU ${r.forwardCpu.toFixed(1)} s) | NLL ${r.nll.toFixed(3)} | load avg ${loadavg()[0]!.toFixed(1)} |`,
  );
  const p = runChild(dir, "", undefined, "ple") as unknown as {
    rows: number;
    width: number;
    fileFirst: number;
    fileWarm: number;
    memWarm: number;
    loadSeconds: number;
    copyRss: number;
    chunks: number;
  };
  console.log(
    `| PLE [${p.rows}, ${p.width}] gather of 512 tokens | file: first ${(p.fileFirst * 1000).toFixed(1)} ms, warm ${(p.fileWarm * 1000).toFixed(1)} ms | bf16 in memory (${p.chunks} chunks): ${(p.memWarm * 1000).toFixed(1)} ms, after a ${p.loadSeconds.toFixed(0)} s load costing ${gib(p.copyRss)} RSS |`,
  );
}

const gib = (b: number) => formatBytes(b, "GiB", 2);

export default async function bench(): Promise<void> {
  const childArgs = process.env[CHILD];
  if (childArgs) {
    const { dir, placement, ids, mode } = JSON.parse(childArgs) as { dir: string; placement: string; ids?: number[]; mode: string };
    return mode === "ple" ? pleChild(dir) : child(dir, placement, ids);
  }
  const fullModel = process.env.OWNTUNE_BENCH_FULL;
  if (fullModel) return full(fullModel === "e4b" ? "e4b" : "e2b");
  const layers = (process.env.OWNTUNE_BENCH_LAYERS ?? "2,4").split(",").map(Number);
  const placements = (process.env.OWNTUNE_BENCH_PLACEMENTS ?? "host,host-bf16").split(",");
  const keep = process.env.OWNTUNE_BENCH_DIR;
  const root = keep ?? mkdtempSync(join(tmpdir(), "owntune-bench-memory-"));
  mkdirSync(root, { recursive: true });
  console.log(
    `load average at start: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(", ")}`,
  );
  try {
    const results = new Map<string, ChildResult>();
    const exports = new Map<string, { peak: number; seconds: number }>();
    for (const L of layers) {
      const config = e2bLayers(L);
      const dir = join(root, `e2b-${L}`);
      if (!existsSync(join(dir, "config.json"))) {
        const t0 = performance.now();
        await initModel({ outDir: dir, config, seed: 1, dtype: "bf16" });
        console.log(`wrote ${dir} in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      const size = readdirSync(dir).reduce((a, f) => a + statSync(join(dir, f)).size, 0);
      console.log(`E2B shapes, ${L} layers: ${(size / 1e9).toFixed(2)} GB on disk`);
      for (const p of placements) {
        const r = runChild(dir, p);
        results.set(`${L}:${p}`, r);
        console.log(`${L} layers, ${p}: storage ${JSON.stringify(r.storage)}, held bytes per parameter ${JSON.stringify(r.held)}`);
        console.log(
          `| ${L} layers, ${p} | ${gib(r.baseline)} | ${gib(r.afterLoad)} | ${gib(r.peak)} | ${gib(r.device)} | ${r.loadSeconds.toFixed(1)} s | ${r.forwardWall.toFixed(1)} s (CPU ${r.forwardCpu.toFixed(1)} s) | ${r.nll.toFixed(4)} | load avg ${loadavg()[0]!.toFixed(1)} |`,
        );
      }
      if (process.env.OWNTUNE_BENCH_EXPORT !== "0") {
        for (const merged of [false, true]) {
          const r = runExport(dir, join(root, `export-${L}`), merged);
          exports.set(`${L}:${merged}`, r);
          console.log(
            `| export ${L} layers, BF16 GGUF${merged ? " + merged/" : ""} | peak ${gib(r.peak)} | ${r.seconds.toFixed(0)} s | load avg ${loadavg()[0]!.toFixed(1)} |`,
          );
        }
        rmSync(join(root, `export-${L}`), { recursive: true, force: true });
      }
    }
    if (layers.includes(2) && layers.includes(4)) {
      const full = { e2b: gemma4E2b(), e4b: gemma4E4b() };
      for (const p of placements) {
        const [a, b] = [results.get(`2:${p}`)!, results.get(`4:${p}`)!];
        // Peak = what the placement holds (computed per config) + an overhead (runtime, activations,
        // transients) that grows per layer as measured between 2 and 4 layers.
        const held = (c: Gemma4Config) => heldBytes(c, a.held);
        const overA = a.peak - held(e2bLayers(2));
        const overB = b.peak - held(e2bLayers(4));
        const perLayer = (overB - overA) / 2;
        // Peak = held bytes + the larger overhead measured: the overhead is the runtime plus the largest
        // transient (a whole float32 table at load before this change; one widened weight and its packed
        // copy, a head tile, activations after it), which does not grow with depth. Its 2 → 4 change comes
        // from the wider (double-wide MLP) shared layers; the full E2B (OWNTUNE_BENCH_FULL) checks this.
        const project = (c: Gemma4Config) => held(c) + Math.max(overA, overB);
        console.log(
          `| ${p} | peak 2 → 4 layers: ${gib(a.peak)} → ${gib(b.peak)} (${gib((b.peak - a.peak) / 2)} per layer; held ${gib(held(e2bLayers(2)))} → ${gib(held(e2bLayers(4)))}; overhead ${gib(overA)} → ${gib(overB)}, ${gib(perLayer)} per layer) | projected E2B ${gib(project(full.e2b))} (held ${gib(held(full.e2b))}), E4B ${gib(project(full.e4b))} (held ${gib(held(full.e4b))}) |`,
        );
      }
      for (const merged of [false, true]) {
        const [a, b] = [exports.get(`2:${merged}`), exports.get(`4:${merged}`)];
        if (a && b) console.log(`| export${merged ? " + merged/" : ""} | peak 2 → 4 layers: ${gib(a.peak)} → ${gib(b.peak)} |`);
      }
    }
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
}
