// Export throughput: MB/s of float32 source weights converted and written, per GGUF type, for a
// synthetic model with Gemma 4 E2B's layer shapes (H 1536, F 6144 / 12288 on KV-shared layers,
// 8 heads of 256 / 512, PLE 256) but 3 layers and a 16,384-row vocabulary; peak RSS while
// exporting, and the projection to the full E2B (35 layers, 262,144-row embeddings). Quantized
// types are timed on one thread and on the default pool (one thread per core) side by side.
// Each output is checked (header parses, a tensor round-trips within its type's error) before the timing counts.
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { exportGguf, modelTensorInputs, readGgufHeader, readGgufTensor, syntheticTokenizerFiles, type QuantMix } from "@owntune/export";
import { expectedTensors, gemma4E2b, parseGemma4Config, type Gemma4Config, type TensorSource } from "@owntune/model";

const BENCH_VOCAB = 16_384;

/** E2B's shapes with `layers` layers (the last one KV-shared, double-wide) and a small vocabulary. */
function e2bLike(layers: number): Gemma4Config {
  const e2b = gemma4E2b();
  const types = Array.from({ length: layers }, (_, i) => (i === layers - 2 ? "full_attention" : "sliding_attention"));
  return parseGemma4Config({
    ...e2b,
    vocab_size: BENCH_VOCAB,
    vocab_size_per_layer_input: BENCH_VOCAB,
    num_hidden_layers: layers,
    layer_types: types,
    num_kv_shared_layers: 1,
  });
}

/** Deterministic values (a triangular distribution, sd ≈ 0.02) generated row by row from a hash, never held whole. */
function syntheticSource(c: Gemma4Config): TensorSource {
  const shapes = new Map(expectedTensors(c).map((t) => [t.name, t.shape]));
  const readRows = async (name: string, start: number, count: number) => {
    const shape = shapes.get(name)!;
    const row = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[0]!;
    const out = new Float32Array(count * row);
    // A hash of (tensor, absolute index): the same value whichever rows are asked for.
    let h0 = 0;
    for (let i = 0; i < name.length; i++) h0 = Math.imul(h0 ^ name.charCodeAt(i), 0x9e3779b1);
    const base = start * row;
    for (let i = 0; i < out.length; i++) {
      let x = (h0 + Math.imul(base + i, 0x85ebca6b)) | 0;
      x ^= x >>> 16;
      x = Math.imul(x, 0x7feb352d);
      x ^= x >>> 15;
      x = Math.imul(x, 0x846ca68b);
      x ^= x >>> 16;
      out[i] = ((x & 0xffff) / 65536 + (x >>> 16) / 65536 - 1) * 0.05;
    }
    return out;
  };
  return {
    has: (n) => shapes.has(n),
    shape: (n) => shapes.get(n)!,
    read: async (n) => readRows(n, 0, shapes.get(n)!.length > 1 ? shapes.get(n)![0]! : 1),
    readRows,
  } as TensorSource;
}

/** Source float32 bytes of the embedding tables vs the rest. */
function split(c: Gemma4Config): { embed: number; layers: number } {
  let embed = 0;
  let layers = 0;
  for (const t of expectedTensors(c)) {
    const b = 4 * t.shape.reduce((a, x) => a * x, 1);
    if (t.role === "embedding") embed += b;
    else layers += b;
  }
  return { embed, layers };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; peakRss: number }> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const t = performance.now();
  try {
    const value = await fn();
    return { value, seconds: (performance.now() - t) / 1000, peakRss: Math.max(peak, process.memoryUsage().rss) };
  } finally {
    clearInterval(timer);
  }
}

export default async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "owntune-bench-export-"));
  try {
    const tokenizer = syntheticTokenizerFiles(BENCH_VOCAB);
    const c = e2bLike(3);
    const source = syntheticSource(c);
    const { embed, layers } = split(c);
    const full = split({ ...gemma4E2b() });
    console.log(
      `synthetic E2B-shaped model: 3 layers, vocab ${BENCH_VOCAB}: ${(layers / 1e6).toFixed(0)} MB layer weights, ${(embed / 1e6).toFixed(0)} MB embeddings (float32)`,
    );
    console.log(`full E2B: ${(full.layers / 1e9).toFixed(2)} GB layer weights, ${(full.embed / 1e9).toFixed(2)} GB embeddings (float32)`);
    const threads = availableParallelism();
    console.log(
      `| type | layers MB/s, 1 thread | layers MB/s, ${threads} threads | speed-up | embeddings MB/s, ${threads} threads | peak RSS | file MB | projected full E2B, ${threads} threads |`,
    );
    console.log("|---|---|---|---|---|---|---|---|");
    const mixes: QuantMix[] = ["F32", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"];
    for (const mix of mixes) {
      // Time the layer tensors and the embedding tables apart: their types and sizes differ per mix.
      const inputs = modelTensorInputs({ config: c, source, mix });
      const isEmbed = (n: string) => n === "token_embd.weight" || n === "per_layer_token_embd.weight";
      const rate = async (pick: (n: string) => boolean, name: string, threads: number) => {
        const { writeGguf } = await import("@owntune/export");
        const path = join(dir, `${name}-${mix}.gguf`);
        const tensors = inputs.filter((t) => pick(t.name));
        const r = await timed(() => writeGguf(path, { metadata: new Map(), tensors, threads }));
        // Check before counting: it parses, and a tensor dequantizes close to its source.
        const h = await readGgufHeader(path);
        const t = h.tensors.find((x) => x.ne.length === 2)!;
        const got = await readGgufTensor(h, t.name);
        const want = await tensors.find((x) => x.name === t.name)!.readRows(0, t.ne[1]!);
        let err = 0,
          rms = 0;
        for (let i = 0; i < want.length; i++) {
          err = Math.max(err, Math.abs(got[i]! - want[i]!));
          rms += want[i]! ** 2;
        }
        if (!(err <= 0.6 * Math.sqrt(rms / want.length))) throw new Error(`${mix} ${t.name}: max error ${err} too large`);
        rmSync(path);
        return { mbps: r.value.sourceBytes / 1e6 / r.seconds, peak: r.peakRss, bytes: r.value.bytes, source: r.value.sourceBytes };
      };
      const float = mix === "F32" || mix === "F16" || mix === "BF16"; // never threaded
      const L1 = float ? undefined : await rate((n) => !isEmbed(n), "layers", 1);
      const L = await rate((n) => !isEmbed(n), "layers", threads);
      const E = await rate(isEmbed, "embed", threads);
      const projected = full.layers / 1e6 / L.mbps + full.embed / 1e6 / E.mbps;
      const fileRatio = (L.bytes + E.bytes) / (L.source + E.source);
      console.log(
        `| ${mix} | ${L1 ? L1.mbps.toFixed(1) : "—"} | ${L.mbps.toFixed(1)} | ${L1 ? `${(L.mbps / L1.mbps).toFixed(2)}×` : "—"} | ${E.mbps.toFixed(1)} | ${(Math.max(L.peak, E.peak) / 2 ** 20).toFixed(0)} MiB | ${((L.bytes + E.bytes) / 1e6).toFixed(0)} | ${(projected / 60).toFixed(1)} min, ${(((full.layers + full.embed) * fileRatio) / 1e9).toFixed(2)} GB |`,
      );
    }
    // Peak memory does not grow with the model: the same export with twice the layers.
    const big = e2bLike(6);
    const r3 = await timed(() => exportGguf({ config: c, source, tokenizer, mix: "Q8_0", out: join(dir, "l3.gguf") }));
    const r6 = await timed(() =>
      exportGguf({ config: big, source: syntheticSource(big), tokenizer, mix: "Q8_0", out: join(dir, "l6.gguf") }),
    );
    console.log(
      `peak RSS, Q8_0 whole export: 3 layers ${(r3.peakRss / 2 ** 20).toFixed(0)} MiB (${(r3.value.sourceBytes / 1e6).toFixed(0)} MB source), 6 layers ${(r6.peakRss / 2 ** 20).toFixed(0)} MiB (${(r6.value.sourceBytes / 1e6).toFixed(0)} MB source)`,
    );
    console.log(
      `per layer (Q8_0, whole export incl. metadata): ${(((r6.seconds - r3.seconds) / 3) * 1000).toFixed(0)} ms per added E2B-sized layer`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
