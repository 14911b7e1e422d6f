// What compact weights cost in time, measured side by side in one process on wasm (one thread, CPU
// time): a base linear of Gemma 4 E2B's shapes stored on the device, on the host as float32, or on the
// host as bf16 (widened per use), forward and forward+backward at several token counts; and the tied
// LM head over the full 262,144 × 1,536 embedding held on the host as f32 or bf16 tiles. Each placement's
// output is checked against the device result (bf16: against the device result on bf16-rounded weights).
import * as tf from "@tensorflow/tfjs";
import { fillNormal, roundToBf16, seededRandom } from "@owntune/core";
import { baseWeight, describeBackend, EmbeddingTable, initBackend, linear, type BaseWeight } from "@owntune/model";

const THREADS = Number(process.env.OWNTUNE_WASM_THREADS ?? 1);

function cpuSeconds(fn: () => void): number {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const c = process.cpuUsage(c0);
  return THREADS > 1 ? (performance.now() - t0) / 1000 : (c.user + c.system) / 1e6;
}

function best(runs: number, fn: () => void): number {
  let s = Infinity;
  for (let i = 0; i < runs; i++) s = Math.min(s, cpuSeconds(fn));
  return s;
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** One [out, in] linear in three placements: forward and forward+backward (input gradient) per token count. */
function linearCost(outF: number, inF: number, tokens: readonly number[]): string[] {
  const w = fillNormal(new Float32Array(outF * inF), seededRandom(1, `w${outF}x${inF}`), 0, 1 / Math.sqrt(inF));
  const ref16 = baseWeight("ref16", roundToBf16(w), outF, inF, "device");
  const weights: BaseWeight[] = [
    baseWeight("w", w, outF, inF, "device"),
    baseWeight("w", w, outF, inF, "host"),
    baseWeight("w", w, outF, inF, "host-bf16"),
  ];
  const lines: string[] = [];
  for (const N of tokens) {
    const x = tf.randomNormal([N, inF], 0, 1, "float32", 3) as tf.Tensor2D;
    const r = tf.randomNormal([N, outF], 0, 1, "float32", 4) as tf.Tensor2D;
    const want = tf.tidy(() => linear(x, weights[0]!).dataSync());
    const want16 = tf.tidy(() => linear(x, ref16).dataSync());
    const secs = weights.map((wt) => {
      const got = tf.tidy(() => linear(x, wt).dataSync());
      const d = maxAbs(got, wt.placement === "host-bf16" ? want16 : want);
      if (d > 1e-4) throw new Error(`${wt.placement} linear differs from the device result by ${d}`);
      const fwd = best(3, () => tf.tidy(() => void linear(x, wt).dataSync()));
      const fb = best(3, () =>
        tf.tidy(
          () =>
            void tf
              .grad((xi: tf.Tensor) => tf.sum(tf.mul(linear(xi, wt), r)))(x)
              .dataSync(),
        ),
      );
      return { fwd, fb };
    });
    const [dev, host, bf16] = secs as [{ fwd: number; fb: number }, { fwd: number; fb: number }, { fwd: number; fb: number }];
    const ms = (s: number) => `${(s * 1000).toFixed(1)} ms`;
    lines.push(
      `| [${outF}, ${inF}], N=${N} | ${ms(dev.fwd)} / ${ms(dev.fb)} | ${ms(host.fwd)} / ${ms(host.fb)} | ${ms(bf16.fwd)} / ${ms(bf16.fb)} | ${(bf16.fwd / host.fwd).toFixed(2)}× / ${(bf16.fb / host.fb).toFixed(2)}× | ${(bf16.fwd / dev.fwd).toFixed(2)}× / ${(bf16.fb / dev.fb).toFixed(2)}× |`,
    );
    tf.dispose([x, r]);
  }
  for (const wt of [...weights, ref16]) wt.dispose();
  return lines;
}

/** The tied head over a full-size vocabulary: target log-probs for N tokens, host f32 tiles vs bf16 tiles. */
function headCost(vocab: number, hidden: number, tokens: readonly number[]): string[] {
  const e = new Float32Array(vocab * hidden);
  const rng = seededRandom(2, "E");
  for (let o = 0; o < e.length; o += 1 << 22) fillNormal(e.subarray(o, Math.min(e.length, o + (1 << 22))), rng, 0, 3 / Math.sqrt(hidden));
  const f32 = new EmbeddingTable(e, vocab, hidden, { storage: "f32" });
  const bf16 = new EmbeddingTable(e, vocab, hidden, { storage: "bf16" });
  const lines: string[] = [];
  for (const N of tokens) {
    const h = tf.randomNormal([N, hidden], 0, 1, "float32", 5) as tf.Tensor2D;
    const targets = Array.from({ length: N }, (_, i) => (i * 7919 + 13) % vocab);
    const a = f32.targetLogprobs(h, targets, 30);
    const b = bf16.targetLogprobs(h, targets, 30);
    if (!a.every(Number.isFinite) || maxAbs(a, b) > 0.5)
      throw new Error(`head: implausible log-probs (f32 vs bf16 differ by ${maxAbs(a, b)})`);
    const tF = best(2, () => void f32.targetLogprobs(h, targets, 30));
    const tB = best(2, () => void bf16.targetLogprobs(h, targets, 30));
    const gflop = (2 * N * hidden * vocab) / 1e9;
    lines.push(
      `| head ${vocab} × ${hidden}, N=${N} | ${tF.toFixed(2)} s (${(gflop / tF).toFixed(1)} GFLOP/s) | ${tB.toFixed(2)} s (${(gflop / tB).toFixed(1)} GFLOP/s) | ${(tB / tF).toFixed(2)}× |`,
    );
    h.dispose();
  }
  f32.dispose();
  bf16.dispose();
  return lines;
}

export default async function bench(): Promise<void> {
  const info = await initBackend({ backend: "wasm", threads: THREADS });
  console.log(`backend: ${describeBackend(info)}`);
  console.log("| linear (E2B shape), tokens | device fwd / fwd+bwd | host f32 | host bf16 | bf16 ÷ host f32 | bf16 ÷ device |");
  console.log("|---|---|---|---|---|---|");
  for (const l of linearCost(12_288, 1_536, [1, 128, 512])) console.log(l); // double-wide gate/up
  for (const l of linearCost(1_536, 6_144, [1, 128, 512])) console.log(l); // down_proj
  console.log("| head, tokens | host f32 tiles | host bf16 tiles | bf16 ÷ f32 |");
  console.log("|---|---|---|---|");
  for (const l of headCost(262_144, 1_536, [1, 128])) console.log(l);
}
