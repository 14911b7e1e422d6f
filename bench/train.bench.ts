// LoRA training steps as the trainer runs them (accumulateGradients over the micro-batch, the global
// norm, clipping, AdamW, the variables' update): tokens/s and effective GFLOP/s on gemma4-tiny, the
// ~100M config, and 2-layer slices of the E2B and 31B shapes (real 262,144-token vocabulary), each in a
// child process (clean peak RSS), beside the raw dense matMul rate measured in the same child. Then the
// memory estimate for a full-size step, and the projected time per million training tokens.
//
//   pnpm bench train                   (env: OWNTUNE_BENCH_TRAIN=tiny,100m,e2b2,31b2  OWNTUNE_BENCH_DIR=reuse models here)
//   OWNTUNE_BENCH_FULL=e2b pnpm bench train   one step (T = 512) of the full E2B shape (a 9.3 GB bf16 checkpoint)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  AdamW,
  accumulateGradients,
  clipGradients,
  estimateMemory,
  globalNorm,
  LoraState,
  loraSchema,
  planLora,
  type MicroBatch,
} from "@owntune/lora";
import {
  configToJson,
  countParameters,
  describeBackend,
  describeStorage,
  gemma4_31b,
  gemma4E2b,
  gemma4Tiny,
  initBackend,
  initModel,
  loadGemma4,
  openCheckpoint,
  parseGemma4Config,
  recomputeByDefault,
  type Gemma4Config,
  type StoragePlan,
} from "@owntune/model";
import { bench100m, forwardFlops, rawMatMul, THREADS } from "./common.js";

const CHILD = "OWNTUNE_BENCH_TRAIN_CHILD";

/** `layers` layers [S, F, …] with `base`'s shapes, no KV sharing. */
function slice(base: Gemma4Config, layers: number): Gemma4Config {
  const types = Array.from({ length: layers }, (_, i) => (i % 2 === 0 ? "sliding_attention" : "full_attention"));
  return parseGemma4Config({ ...configToJson(base), num_hidden_layers: layers, layer_types: types, num_kv_shared_layers: 0 });
}

const CONFIGS: Record<string, { config: () => Gemma4Config; T: number }> = {
  tiny: { config: gemma4Tiny, T: 512 },
  "100m": { config: bench100m, T: 512 },
  e2b2: { config: () => slice(gemma4E2b(), 2), T: 512 },
  "31b2": { config: () => slice(gemma4_31b(), 2), T: 256 },
  e2b: { config: gemma4E2b, T: 512 },
};

interface ChildResult {
  name: string;
  T: number;
  loss: number;
  gradNorm: number;
  seconds: number;
  wall: number;
  raw: number;
  maxRssGiB: number;
  estimateGiB: number;
  placement: string;
}

/** In the child: load the model, take 1 warm-up and 1 timed training step, report. */
async function child(name: string, dir: string): Promise<void> {
  const { T } = CONFIGS[name]!;
  await initBackend({ backend: "wasm", threads: THREADS });
  const cp = await openCheckpoint(dir);
  const config = (await import("@owntune/model")).parseGemma4Config(
    JSON.parse((await import("node:fs")).readFileSync(join(dir, "config.json"), "utf8")),
  );
  const model = await loadGemma4(config, cp);
  const storage = model.storage;
  await cp.close();
  const plan = planLora(config, loraSchema.parse({}));
  const lora = new LoraState(plan.modules, 8, 2, { seed: 0 });
  const opt = new AdamW(
    { betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0 },
    lora.params.map((p) => p.length),
  );
  const ids = Array.from({ length: T }, (_, i) => 3 + ((i * 7919 + 13) % (config.vocab_size - 3)));
  const mb: MicroBatch = { batch: { ids: [ids], lossMask: [ids.map((_, i) => (i === 0 ? 0 : 1))] }, rows: 1, length: T, targets: T - 1 };
  const step = () => {
    const grads = lora.params.map((p) => new Float32Array(p.length));
    const loss = accumulateGradients(model, lora, mb, mb.targets, grads);
    const norm = globalNorm(grads);
    clipGradients(grads, norm, 1);
    opt.update(lora.params, grads, 1e-4);
    lora.sync();
    return { loss, norm };
  };
  const first = step(); // checked before timing: finite, a random model's loss near ln V, non-zero gradients
  if (!Number.isFinite(first.loss) || first.loss > 3 * Math.log(config.vocab_size) || !(first.norm > 0) || !Number.isFinite(first.norm))
    throw new Error(`${name}: implausible step (loss ${first.loss}, grad norm ${first.norm})`);
  const rawBefore = rawMatMul(512, 1024, 1024);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = step();
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  const rawAfter = rawMatMul(512, 1024, 1024);
  const est = estimateMemory({
    config,
    storage,
    trainable: lora.size,
    rank: 8,
    batchSize: 1,
    seqLen: T,
    backend: "wasm",
    recompute: recomputeByDefault(model, 1, T),
  });
  const out: ChildResult = {
    name,
    T,
    loss: r.loss,
    gradNorm: r.norm,
    seconds: THREADS > 1 ? wall : (c.user + c.system) / 1e6,
    wall,
    raw: (rawBefore + rawAfter) / 2,
    maxRssGiB: process.resourceUsage().maxRSS / 2 ** 20,
    estimateGiB: est.total / 2 ** 30,
    placement: describeStorage(storage),
  };
  console.log(`RESULT ${JSON.stringify(out)}`);
  lora.dispose();
  model.dispose();
}

async function ensureModel(root: string, name: string): Promise<string> {
  const dir = join(root, name);
  if (!existsSync(join(dir, "config.json"))) await initModel({ outDir: dir, config: CONFIGS[name]!.config(), seed: 1 });
  return dir;
}

export default async function (): Promise<void> {
  if (process.env[CHILD]) {
    const [name, dir] = process.env[CHILD]!.split("|");
    return child(name!, dir!);
  }
  const info = await initBackend({ backend: "wasm", threads: THREADS });
  console.log(
    `backend: ${describeBackend(info)}; ${THREADS > 1 ? "wall-clock" : "CPU-time"} rates; load average ${loadavg()
      .map((x) => x.toFixed(1))
      .join(" ")}`,
  );
  const keep = process.env.OWNTUNE_BENCH_DIR;
  const root = keep ?? mkdtempSync(join(tmpdir(), "owntune-bench-train-"));
  mkdirSync(root, { recursive: true });
  const names = process.env.OWNTUNE_BENCH_FULL
    ? [process.env.OWNTUNE_BENCH_FULL]
    : (process.env.OWNTUNE_BENCH_TRAIN ?? "tiny,100m,e2b2,31b2").split(",");
  console.log("| run | T | step (CPU) | tokens/s | GFLOP/s | raw matMul beside it | ÷ raw | peak RSS | estimate |");
  console.log("|---|---|---|---|---|---|---|---|---|");
  const results: ChildResult[] = [];
  try {
    for (const name of names) {
      const dir = await ensureModel(root, name);
      const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, "train"], {
        env: { ...process.env, [CHILD]: `${name}|${dir}` },
        encoding: "utf8",
        maxBuffer: 64 << 20,
      });
      const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (!line) {
        const lines = (r.stderr || r.stdout)
          .trim()
          .split("\n")
          .filter((l) => !/^\s+at /.test(l));
        console.log(`| ${name} | failed: ${lines.slice(-3).join(" ").slice(0, 500)} |`);
        continue;
      }
      const x = JSON.parse(line.slice(7)) as ChildResult;
      results.push(x);
      const c = CONFIGS[name]!.config();
      const flops = 2 * forwardFlops(c, x.T, x.T - 1); // forward + input-gradient backward (the base is frozen)
      const g = flops / x.seconds / 1e9;
      const p = countParameters(c);
      console.log(
        `| ${name} (${(p.other / 1e6).toFixed(0)}M + ${((p.embedding + p.perLayerEmbedding) / 1e6).toFixed(0)}M emb., ${x.placement}) | ${x.T} | ${x.seconds.toFixed(2)} s | ${(x.T / x.seconds).toFixed(1)} | ${g.toFixed(1)} | ${x.raw.toFixed(1)} | ${(g / x.raw).toFixed(2)} | ${x.maxRssGiB.toFixed(2)} GiB | ${x.estimateGiB.toFixed(2)} GiB |`,
      );
    }
  } finally {
    if (!keep) rmSync(root, { recursive: true, force: true });
  }
  // Projection to the full E2B at the rate measured on its 2-layer slice: time per token scales with FLOPs.
  const slice2 = results.find((r) => r.name === "e2b2");
  if (slice2) {
    const g = (2 * forwardFlops(CONFIGS.e2b2!.config(), slice2.T, slice2.T - 1)) / slice2.seconds;
    const full = 2 * forwardFlops(gemma4E2b(), 512, 511);
    const secondsPerToken = full / g / 512;
    console.log(
      `E2B projection at the e2b2 slice's ${(g / 1e9).toFixed(1)} GFLOP/s: ${(1 / secondsPerToken).toFixed(1)} tokens/s, ${((secondsPerToken * 1e6) / 3600).toFixed(0)} h per million training tokens (T = 512)`,
    );
  }
  for (const [label, baseDtype] of [
    ["bf16", "bf16"],
    ["Q4_0", "q4_0"],
  ] as const) {
    const storage: StoragePlan = {
      kernels: { name: "native", reason: "estimate" },
      linears: "native",
      baseDtype,
      transposed: "on-the-fly",
      embedding: "native-bf16",
      ple: { where: "file" },
    };
    for (const recompute of [false, true]) {
      const e = estimateMemory({
        config: gemma4E2b(),
        storage,
        trainable: 0,
        rank: 8,
        batchSize: 1,
        seqLen: 512,
        backend: "wasm",
        recompute,
      });
      console.log(
        `E2B step estimate (T = 512, batch 1, native ${label} base, ${recompute ? "recomputation" : "no recomputation"}): ${(e.total / 2 ** 30).toFixed(1)} GiB in all, ${(e.activations / 2 ** 30).toFixed(2)} GiB of activations, ${(e.backend / 2 ** 30).toFixed(1)} GiB on the wasm heap`,
      );
    }
  }
  tf.disposeVariables();
}
