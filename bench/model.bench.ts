// Model compute on the wasm backend: forward, forward+backward (LoRA gradients) and prefill of
// gemma4-tiny and a ~100M-parameter config, as effective GFLOP/s beside the raw dense matMul rate
// measured in the same run. (Memory of real-size models: model-memory.bench.ts.)
// Each result is checked before it is timed.
import * as tf from "@tensorflow/tfjs";
import {
  baseWeight,
  countParameters,
  describeBackend,
  gemma4FromWeights,
  gemma4Tiny,
  initBackend,
  lastTokenLogits,
  linear,
  lmLoss,
  randomWeights,
  type Gemma4Config,
  type Gemma4Model,
} from "@owntune/model";
import { bench100m, besideRaw, best, forwardFlops, rawMatMul, THREADS } from "./common.js";

/**
 * linear() with its custom gradient against the naive route (W kept [out, in], x·Wᵀ as a transposed
 * matMul, tfjs's own gradients): forward + backward of Σ(y ⊙ R) w.r.t. x and the LoRA pair.
 */
function linearVsNaive(N: number, inF: number, outF: number, rank: number): string[] {
  const w = tf.randomNormal([outF, inF], 0, 0.05, "float32", 3) as tf.Tensor2D;
  const base = baseWeight("w", w.dataSync() as Float32Array, outF, inF);
  const x = tf.randomNormal([N, inF], 0, 1, "float32", 4) as tf.Tensor2D;
  const r = tf.randomNormal([N, outF], 0, 1, "float32", 5) as tf.Tensor2D;
  const a = tf.variable(tf.randomNormal([rank, inF], 0, 0.05, "float32", 6) as tf.Tensor2D);
  const b = tf.variable(tf.randomNormal([outF, rank], 0, 0.05, "float32", 7) as tf.Tensor2D);
  const ours = () =>
    tf.grads((xi: tf.Tensor, ai: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(tf.mul(linear(xi, base, { a: ai as tf.Tensor2D, b: bi as tf.Tensor2D, scale: 2 }), r)),
    )([x, a, b]);
  const naive = () =>
    tf.grads((xi: tf.Tensor, ai: tf.Tensor, bi: tf.Tensor) =>
      tf.sum(tf.mul(tf.add(tf.matMul(xi, w, false, true), tf.mul(tf.matMul(tf.matMul(xi, ai, false, true), bi, false, true), 2)), r)),
    )([x, a, b]);
  const [g1, g2] = [ours(), naive()];
  g1.forEach((g, i) => {
    const d = tf.tidy(() => tf.max(tf.abs(tf.sub(g, g2[i]!))).dataSync()[0]!);
    if (d > 1e-3) throw new Error(`linear gradient ${i} differs from tfjs autodiff by ${d}`);
  });
  tf.dispose([...g1, ...g2]);
  const flops = 2 * N * inF * outF * 2; // forward product + input-gradient product (W is frozen)
  const t1 = best(2, () => tf.tidy(() => void ours().map((g) => g.dataSync())));
  const t2 = best(2, () => tf.tidy(() => void naive().map((g) => g.dataSync())));
  base.dispose();
  tf.dispose([w, x, r, a, b]);
  return [
    `| linear [${N}, ${inF}] → ${outF}, LoRA r=${rank}: forward + backward, custom gradient | ${(t1.seconds * 1000).toFixed(0)} ms | ${(flops / t1.seconds / 1e9).toFixed(1)} GFLOP/s |`,
    `| same, W as [out, in] with transposed matMul and tfjs's own gradients | ${(t2.seconds * 1000).toFixed(0)} ms | ${(flops / t2.seconds / 1e9).toFixed(1)} GFLOP/s (${(t2.seconds / t1.seconds).toFixed(1)}× slower) |`,
  ];
}

const LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

function loraVariables(model: Gemma4Model, rank: number) {
  const lora = new Map<string, { a: tf.Variable<tf.Rank.R2>; b: tf.Variable<tf.Rank.R2>; scale: number }>();
  for (const name of model.linears.names()) {
    const module = name.replace(/\.weight$/, "");
    if (!LORA_TARGETS.some((t) => module.endsWith(t))) continue;
    const w = model.linears.get(name);
    lora.set(module, {
      a: tf.variable(tf.randomNormal([rank, w.inFeatures], 0, 0.01) as tf.Tensor2D),
      b: tf.variable(tf.randomNormal([w.outFeatures, rank], 0, 0.01) as tf.Tensor2D),
      scale: 2,
    });
  }
  return lora;
}

async function throughput(name: string, config: Gemma4Config, T: number): Promise<string[]> {
  const t0 = performance.now();
  const model = await gemma4FromWeights(config, randomWeights(config, 1));
  const params = countParameters(config);
  console.log(
    `${name}: ${(params.other / 1e6).toFixed(1)}M non-embedding + ${((params.embedding + params.perLayerEmbedding) / 1e6).toFixed(1)}M embedding parameters, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  const ids = Array.from({ length: T }, (_, i) => 3 + ((i * 7919 + 13) % (config.vocab_size - 3)));
  const batch = { ids: [ids], lossMask: [ids.map(() => 1)] };
  const lora = loraVariables(model, 8);
  const vars = [...lora.values()].flatMap((p) => [p.a, p.b]);

  // Check, then time: the loss is finite and near ln(V) for random weights; gradients are finite and non-zero.
  const loss0 = tf.tidy(() => lmLoss(model, batch, { lora }).dataSync()[0]!);
  if (!Number.isFinite(loss0) || loss0 <= 0 || loss0 > 3 * Math.log(config.vocab_size))
    throw new Error(`${name}: implausible loss ${loss0}`);
  const fwd = besideRaw(() => best(2, () => tf.tidy(() => lmLoss(model, batch, { lora }).dataSync()[0]!)));
  if (Math.abs(fwd.value - loss0) > 1e-4 * loss0) throw new Error(`${name}: loss not reproducible (${fwd.value} vs ${loss0})`);
  const step = () => {
    const { value, grads } = tf.variableGrads(() => lmLoss(model, batch, { lora }), vars);
    const norms = tf.tidy(() => Object.values(grads).map((g) => tf.norm(g).dataSync()[0]!));
    tf.dispose([value, ...Object.values(grads)]);
    return norms;
  };
  const norms = step();
  if (!norms.every((n) => Number.isFinite(n)) || norms.every((n) => n === 0)) throw new Error(`${name}: bad gradients`);
  const fb = besideRaw(() => best(2, step));
  const prefill = besideRaw(() =>
    best(2, () => {
      const lg = lastTokenLogits(model, { ids: [ids] }, { lora });
      const v = lg.dataSync()[0]!;
      lg.dispose();
      return v;
    }),
  );
  if (!Number.isFinite(prefill.value)) throw new Error(`${name}: bad prefill logits`);
  tf.dispose(vars);
  model.dispose();

  const fFlops = forwardFlops(config, T, T);
  const pFlops = forwardFlops(config, T, 1);
  const rows = [
    [`${name} forward + loss (T=${T}, logits for every token)`, fFlops, fwd],
    [`${name} forward + backward (LoRA r=8 on all 7 linears)`, 2 * fFlops, fb],
    [`${name} prefill (last-token logits only)`, pFlops, prefill],
  ] as const;
  return rows.map(([label, flops, r]) => {
    const g = flops / r.seconds / 1e9;
    return `| ${label} | ${r.seconds.toFixed(2)} s (wall ${r.wall.toFixed(2)} s) | ${(T / r.seconds).toFixed(0)} tok/s | ${g.toFixed(1)} | ${r.raw.toFixed(1)} | ${(g / r.raw).toFixed(2)} |`;
  });
}

export default async function (): Promise<void> {
  // One thread by default: on a shared machine an XNNPACK pool spins while its other thread waits for
  // a core, which makes wall-clock rates meaningless (measured 20× slowdowns); CPU time stays comparable.
  const info = await initBackend({ backend: "wasm", threads: THREADS });
  const unit = THREADS > 1 ? "GFLOP/s (wall)" : "GFLOP/CPU-s";
  console.log(`backend: ${describeBackend(info)}`);
  const raws = [rawMatMul(512, 768, 3072), rawMatMul(512, 1024, 1024), rawMatMul(512, 128, 16384)];
  console.log(
    `raw dense matMul: ${raws.map((r) => r.toFixed(1)).join(" / ")} ${unit} ([512,768]·[768,3072], [512,1024]·[1024,1024], [512,128]·[128,16384]); the reference below is [512,1024]·[1024,1024], measured before and after each run`,
  );
  for (const l of linearVsNaive(512, 1024, 1024, 8)) console.log(l);
  const lines = [
    `| run | ${THREADS > 1 ? "wall" : "CPU"} time (best of 2) | tokens/s | ${unit} | raw matMul beside it | ÷ raw |`,
    "|---|---|---|---|---|---|",
  ];
  lines.push(...(await throughput("gemma4-tiny", gemma4Tiny(), 512)));
  for (const l of lines) console.log(l);
  lines.length = 0;
  lines.push(...(await throughput("bench-100m", bench100m(), 256)));
  for (const l of lines) console.log(l);
}
