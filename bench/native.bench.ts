// The native kernels (ggml through @owntune/ggml) against the wasm path and against llama.cpp, in one run:
//  step    LoRA step (forward + backward of lmLoss, LoRA r = 8 on all 7 target modules, T = 256) on a ~100M
//          config and 2-layer slices of the E2B and 31B shapes (real 262,144-token vocabulary): wasm,
//          native f32, bf16, Q8_0, Q4_0, Q4_K; beside the machine's f32 GEMM rate measured in the same run
//          (ggml f32 mul_mat, and numpy/OpenBLAS when python3 has it);
//  score   `scoreIds` tokens/s (logits at every position, 1024-token passes) against llama.cpp's
//          llama-perplexity on the same F32 GGUF, perplexities compared first;
//  export  Q4_K_M export MB/s (ggml's quantizer and ours in JavaScript) against llama-quantize on that file;
//  memory  peak RSS of one LoRA step (T = 512) on the full E2B shape with a bf16 base and the full 31B
//          shape with a Q4_0 base, each in a child process, only with enough memory free;
//  then    projected hours per million training tokens for E2B, E4B and 31B.
//
//   OWNTUNE_LLAMA_CPP_BIN=/work/llama-build/bin npx -y pnpm@12.4.2 bench native
//   env: OWNTUNE_BENCH_NATIVE=step,score,export,memory (sections; default all);
//        OWNTUNE_BENCH_NATIVE_CONFIGS="E2B 2-layer slice,31B 2-layer slice:bf16+q4_0" (step configs and kernels);
//        OWNTUNE_BENCH_NATIVE_MEMORY=e2b-bf16,31b-q4 (memory runs)
// llama.cpp's tools are built from the source node-llama-cpp ships (see `llamaCppHint`). Weights are
// synthetic (a hash of tensor and index, never held whole), so nothing big is written except the
// score model (≈ 0.7 GB F32 GGUF) in a temp folder that is removed.
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, ftruncateSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { GgmlMatrix, ggmlRuntime, nodeLlamaCppBinDir } from "@owntune/ggml";
import { exportDir, exportGguf, openGgufTensorSource, readTokenizerFiles, resetQuantizerChoice } from "@owntune/export";
import {
  configToJson,
  countParameters,
  describeBackend,
  describeStorage,
  expectedTensors,
  gemma4_31b,
  gemma4E2b,
  gemma4E4b,
  gemma4Tiny,
  initBackend,
  initModel,
  layerSpecs,
  lmLoss,
  loadGemma4,
  loadModelDir,
  parseGemma4Config,
  randomTensor,
  recomputeByDefault,
  scoreIds,
  type BaseDtype,
  type Gemma4Config,
  type Gemma4Model,
  type LoadOptions,
  type TensorFileRows,
  type TensorSource,
} from "@owntune/model";
import { LORA_TARGET_MODULES } from "@owntune/lora";
import { bench100m, forwardFlops } from "./common.js";

const CHILD = "OWNTUNE_BENCH_NATIVE_CHILD";
const STEP_T = 256;
const MEMORY_T = 512;
const THREADS = availableParallelism();
const S = "sliding_attention";
const F = "full_attention";
const GB = 1e9;

// ---------------------------------------------------------------------------------------------
// Synthetic weights.

/** Uniform values of standard deviation `std` from a hash of (seed, absolute index): any rows, any order. */
function fillHashed(out: Float32Array, seed: number, first: number, std: number): void {
  const a = Math.sqrt(3) * std;
  for (let i = 0; i < out.length; i++) {
    let x = (seed + Math.imul(first + i, 0x9e3779b1)) | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    x ^= x >>> 16;
    out[i] = ((x >>> 0) / 2 ** 31 - 1) * a;
  }
}

/**
 * The config's tensors, generated row by row (linears std 1/√in, the embedding 3/√H, the per-layer table
 * 1/√P, as init-weights.ts draws them; small tensors from `randomTensor`). `dtype` is what the source says
 * it stores; `ple` gives the per-layer table as file rows (a sparse file) instead.
 */
function hashSource(c: Gemma4Config, dtype: "F32" | "BF16", ple?: TensorFileRows): TensorSource {
  const specs = new Map(expectedTensors(c).map((t) => [t.name, t]));
  const small = new Map<string, Float32Array>();
  const rows = async (name: string, start: number, count: number): Promise<Float32Array> => {
    const t = specs.get(name)!;
    const width = t.shape.length > 1 ? t.shape[1]! : 1;
    if (t.role === "linear" || t.role === "embedding") {
      const std =
        t.role === "linear"
          ? 1 / Math.sqrt(width)
          : name.startsWith("embed_tokens_per_layer")
            ? 1 / Math.sqrt(c.hidden_size_per_layer_input)
            : 3 / Math.sqrt(c.hidden_size);
      const out = new Float32Array(count * width);
      let seed = 0;
      for (let i = 0; i < name.length; i++) seed = Math.imul(seed ^ name.charCodeAt(i), 0x01000193);
      fillHashed(out, seed, start * width, std);
      return out;
    }
    if (!small.has(name)) small.set(name, randomTensor(c, t, 1));
    return small.get(name)!.subarray(start * width, (start + count) * width);
  };
  return {
    has: (n) => specs.has(n),
    shape: (n) => specs.get(n)!.shape,
    read: (n) => rows(n, 0, specs.get(n)!.shape[0] ?? 1),
    readRows: rows,
    dtype: () => dtype,
    fileRows: (n) => (n === "embed_tokens_per_layer.weight" ? ple : undefined),
  };
}

// ---------------------------------------------------------------------------------------------
// Configs.

/** The same layers under a 512-token vocabulary: a step then costs the decoder layers alone. */
const smallVocab = (c: Gemma4Config) => parseGemma4Config({ ...configToJson(c), vocab_size: 512, vocab_size_per_layer_input: 512 });

const slice = (c: Gemma4Config, extra: Record<string, unknown> = {}) =>
  parseGemma4Config({ ...configToJson(c), num_hidden_layers: 2, layer_types: [S, F], num_kv_shared_layers: 0, ...extra });

/** ~32M non-embedding parameters with the real vocabulary (the size the issue's llama.cpp figures used). */
function scoreModelConfig(): Gemma4Config {
  return parseGemma4Config({
    ...configToJson(gemma4Tiny()),
    hidden_size: 512,
    intermediate_size: 2048,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    num_global_key_value_heads: null,
    head_dim: 128,
    global_head_dim: 256,
    attention_k_eq_v: false,
    layer_types: [S, S, S, F, S, S, S, F],
    sliding_window: 512,
    num_kv_shared_layers: 0,
    hidden_size_per_layer_input: 0,
    use_double_wide_mlp: false,
  });
}

// ---------------------------------------------------------------------------------------------
// One LoRA step.

interface StepResult {
  seconds: number;
  loss: number;
  storage: string;
  recompute: boolean;
}

function loraVariables(model: Gemma4Model, rank: number) {
  const lora = new Map<string, { a: tf.Variable<tf.Rank.R2>; b: tf.Variable<tf.Rank.R2>; scale: number }>();
  for (const name of model.linears.names()) {
    const module = name.replace(/\.weight$/, "");
    if (!LORA_TARGET_MODULES.some((t) => module.endsWith(`.${t}`))) continue;
    const w = model.linears.get(name);
    lora.set(module, {
      a: tf.variable(tf.randomNormal([rank, w.inFeatures], 0, 1 / Math.sqrt(w.inFeatures), "float32", lora.size) as tf.Tensor2D),
      b: tf.variable(tf.randomNormal([w.outFeatures, rank], 0, 0.01, "float32", lora.size + 1000) as tf.Tensor2D),
      scale: 2,
    });
  }
  return lora;
}

/** Loads `config` with `options` and runs `loraStepOn`. */
async function loraStep(
  config: Gemma4Config,
  source: TensorSource,
  options: LoadOptions,
  T: number,
  recompute?: boolean,
): Promise<StepResult> {
  const model = await loadGemma4(config, source, options);
  try {
    return loraStepOn(model, T, recompute);
  } finally {
    model.dispose();
  }
}

/** Checks one LoRA step (finite loss near ln V, finite non-zero gradients), then times one. */
function loraStepOn(model: Gemma4Model, T: number, recompute?: boolean): StepResult {
  const config = model.config;
  const lora = loraVariables(model, 8);
  const vars = [...lora.values()].flatMap((p) => [p.a, p.b]);
  const ids = Array.from({ length: T }, (_, i) => 3 + ((i * 7919 + 13) % (config.vocab_size - 3)));
  const batch = { ids: [ids], lossMask: [ids.map(() => 1)] };
  const run = () => {
    const { value, grads } = tf.variableGrads(() => lmLoss(model, batch, { lora, recompute }), vars);
    const loss = value.dataSync()[0]!;
    const norms = tf.tidy(() => Object.values(grads).map((g) => tf.norm(g).dataSync()[0]!));
    tf.dispose([value, ...Object.values(grads)]);
    return { loss, norms };
  };
  try {
    const first = run();
    // The soft cap bounds each logit to ±cap: a random model's loss stays below ln V + 2·cap.
    const bound = Math.log(config.vocab_size) + 2 * (config.final_logit_softcapping ?? 30);
    if (!Number.isFinite(first.loss) || first.loss <= 0 || first.loss > bound) throw new Error(`implausible loss ${first.loss}`);
    if (!first.norms.every(Number.isFinite) || first.norms.every((n) => n === 0)) throw new Error("bad LoRA gradients");
    const t0 = performance.now();
    const again = run();
    const seconds = (performance.now() - t0) / 1000;
    if (Math.abs(again.loss - first.loss) > 1e-4 * first.loss) throw new Error(`loss not reproducible: ${again.loss} vs ${first.loss}`);
    return { seconds, loss: first.loss, storage: describeStorage(model.storage), recompute: recompute ?? recomputeByDefault(model, 1, T) };
  } finally {
    tf.dispose(vars);
  }
}

// ---------------------------------------------------------------------------------------------
// Reference GEMM rates.

/** ggml f32 mul_mat GFLOP/s on [512, 1536]·[1536, 6144] (checked against a float64 row first). */
async function ggmlF32Rate(): Promise<number> {
  const [n, k, m] = [512, 1536, 6144];
  const w = new Float32Array(m * k);
  fillHashed(w, 1, 0, 0.03);
  const x = new Float32Array(n * k);
  fillHashed(x, 2, 0, 1);
  const mat = await GgmlMatrix.fromF32("gemm", w, m, k, { dtype: "f32", transposed: "none" });
  try {
    const got = mat.forward(x, n, (y) => y[5 * m + 7]!);
    let want = 0;
    for (let t = 0; t < k; t++) want += x[5 * k + t]! * w[7 * k + t]!;
    if (Math.abs(got - want) > 1e-4) throw new Error(`ggml f32 mul_mat check failed: ${got} vs ${want}`);
    let best = Infinity;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      mat.forward(x, n, (y) => y[0]);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    return (2 * n * k * m) / best / GB;
  } finally {
    mat.dispose();
  }
}

/** numpy (OpenBLAS) sgemm GFLOP/s on the same product and threads, or undefined without numpy. */
function openBlasRate(): number | undefined {
  const script = [
    "import numpy as np, time",
    "a = np.random.rand(512, 1536).astype(np.float32); b = np.random.rand(1536, 6144).astype(np.float32)",
    "c = a @ b; assert abs(float(c[5, 7]) - float(np.dot(a[5].astype(np.float64), b[:, 7].astype(np.float64)))) < 1e-2",
    "best = 1e9",
    "for _ in range(5):\n    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)",
    "print(2 * 512 * 1536 * 6144 / best / 1e9)",
  ].join("\n");
  const r = spawnSync("python3", ["-c", script], {
    encoding: "utf8",
    env: { ...process.env, OPENBLAS_NUM_THREADS: String(THREADS), OMP_NUM_THREADS: String(THREADS) },
  });
  const v = Number(r.stdout.trim());
  return r.status === 0 && Number.isFinite(v) ? v : undefined;
}

// ---------------------------------------------------------------------------------------------
// Sections.

const fmt = (v: number | undefined, d = 1) => (v === undefined ? "—" : v.toFixed(d));

async function stepSection(): Promise<Map<string, number>> {
  const gemm = async () => ({ ggml: await ggmlF32Rate(), blas: openBlasRate() });
  const before = await gemm();
  console.log(
    `f32 GEMM [512,1536]·[1536,6144] before: ggml mul_mat ${fmt(before.ggml)} GFLOP/s, numpy/OpenBLAS ${fmt(before.blas)} GFLOP/s (${THREADS} threads)`,
  );
  const configs: Array<[string, Gemma4Config, ReadonlyArray<"wasm" | BaseDtype>]> = [
    ["bench-100m", bench100m(), ["wasm", "f32", "bf16", "q8_0", "q4_0", "q4_k"]],
    ["E2B 2-layer slice", slice(gemma4E2b()), ["wasm", "f32", "bf16", "q8_0", "q4_0", "q4_k"]],
    // f32 would hold 9.4 GB (W and the 1.4 B-value embedding), too much beside other work; wasm cannot run
    // it at all (XNNPACK runs out of the 4 GiB wasm heap packing a 21,504 × 5,376 product: status 6).
    ["31B 2-layer slice", slice(gemma4_31b()), ["bf16", "q8_0", "q4_0", "q4_k"]],
  ];
  const rates = new Map<string, number>();
  const rows: string[] = [];
  // OWNTUNE_BENCH_NATIVE_CONFIGS=name:kernels+kernels,… picks configs and kernels (e.g. "31B 2-layer slice:bf16+q4_0").
  const picked = process.env.OWNTUNE_BENCH_NATIVE_CONFIGS?.split(",").map((s) => s.split(":") as [string, string?]);
  for (const [name, config, all] of configs) {
    const pick = picked?.find(([n]) => n === name);
    if (picked && !pick) continue;
    const runs = pick?.[1] ? all.filter((r) => pick[1]!.split("+").includes(r)) : all;
    const p = countParameters(config);
    const flops = 2 * forwardFlops(config, STEP_T, STEP_T);
    console.log(
      `${name}: ${(p.other / 1e6).toFixed(0)}M non-embedding + ${(p.embedding / 1e6).toFixed(0)}M embedding parameters; ${(flops / STEP_T / GB).toFixed(2)} GFLOP per token per step`,
    );
    for (const run of runs) {
      const options: LoadOptions = run === "wasm" ? { kernels: "tfjs" } : { kernels: "native", baseDtype: run };
      const r = await loraStep(config, hashSource(config, "F32"), options, STEP_T, false);
      // The decoder layers alone: the same layers under a 512-token vocabulary (the head then costs ~nothing).
      const small = smallVocab(config);
      const l = await loraStep(small, hashSource(small, "F32"), options, STEP_T, false);
      const layerFlops = 2 * forwardFlops(small, STEP_T, STEP_T);
      const g = flops / r.seconds / GB;
      const layers = layerFlops / l.seconds / GB;
      const head = (flops - layerFlops) / Math.max(r.seconds - l.seconds, 1e-3) / GB;
      rates.set(`${name}:${run}`, g);
      rates.set(`${name}:${run}:layers`, layers);
      rates.set(`${name}:${run}:head`, head);
      rows.push(
        `| ${name} | ${run === "wasm" ? "wasm (tfjs)" : `native ${run}`} | ${r.seconds.toFixed(2)} s | ${(STEP_T / r.seconds).toFixed(0)} | ${g.toFixed(1)} | ${(g / before.ggml).toFixed(2)} | ${before.blas ? (g / before.blas).toFixed(2) : "—"} | ${l.seconds.toFixed(2)} s, ${layers.toFixed(1)} (${(layers / before.ggml).toFixed(2)}) | ${head.toFixed(1)} |`,
      );
      console.log(`${rows[rows.length - 1]}  loss ${r.loss.toFixed(3)}; ${r.storage}`);
    }
  }
  const after = await gemm();
  console.log(`f32 GEMM after: ggml mul_mat ${fmt(after.ggml)} GFLOP/s, numpy/OpenBLAS ${fmt(after.blas)} GFLOP/s`);
  console.log(
    `\n| config | kernels | step (T = ${STEP_T}) | tokens/s | GFLOP/s | ÷ ggml f32 GEMM | ÷ OpenBLAS | layers alone (512-token vocabulary): step, GFLOP/s (÷ ggml f32 GEMM) | head: GFLOP/s (the difference) |\n|---|---|---|---|---|---|---|---|---|\n${rows.join("\n")}`,
  );
  rates.set("gemm:ggml", (before.ggml + after.ggml) / 2);
  if (before.blas && after.blas) rates.set("gemm:blas", (before.blas + after.blas) / 2);
  return rates;
}

function llamaCppHint(): string {
  const bins = nodeLlamaCppBinDir();
  const bundle =
    "reason" in bins
      ? "node_modules/node-llama-cpp/llama/gitRelease.bundle"
      : join(bins.dir, "../../../../node-llama-cpp/llama/gitRelease.bundle");
  return [
    "llama.cpp tools not found: set OWNTUNE_LLAMA_CPP_BIN to a folder with llama-perplexity and llama-quantize. Build them outside the repository (≈ 10 min on 2 cores):",
    `  git clone ${bundle} /work/llama-src`,
    "  cmake -S /work/llama-src -B /work/llama-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF",
    "  ninja -C /work/llama-build llama-perplexity llama-quantize",
    "  export OWNTUNE_LLAMA_CPP_BIN=/work/llama-build/bin",
  ].join("\n");
}

/** Words for a deterministic text long enough for several 1024-token passes. */
function benchText(words: number): string {
  const vocab =
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an they you were her she there would their we him been has when who will more no if out so said what up its about into than them can only other new some could time these two may then do first any my now such like our over man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still own see men work long get here between both life being under never day same another know while last might us great old year off come since against go came right used take three".split(
      " ",
    );
  let s = 17;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(vocab[s % vocab.length]!);
    if (s % 13 === 0) out.push(".\n");
  }
  return out.join(" ");
}

async function scoreAndExportSections(sections: Set<string>, root: string): Promise<void> {
  const bin = process.env.OWNTUNE_LLAMA_CPP_BIN;
  const llama = bin && existsSync(join(bin, "llama-perplexity")) ? bin : undefined;
  if (!llama) console.log(llamaCppHint());
  const config = scoreModelConfig();
  const modelDir = join(root, "score-model");
  await initModel({ outDir: modelDir, config, seed: 1, dtype: "f32" });
  const f32Dir = join(root, "f32");
  await exportDir({ modelDir, outDir: f32Dir, quant: "F32", verify: false });
  const gguf = join(f32Dir, "model-F32.gguf");
  const ggufBytes = statSync(gguf).size;
  console.log(
    `score model: ${(countParameters(config).other / 1e6).toFixed(1)}M non-embedding parameters, F32 GGUF ${(ggufBytes / GB).toFixed(2)} GB`,
  );

  if (sections.has("score")) {
    const md = await loadModelDir(modelDir);
    const tokenizer = md.tokenizer;
    const text = benchText(4000);
    const textFile = join(root, "text.txt");
    writeFileSync(textFile, text);
    const tokens = tokenizer.encode(text); // BOS first
    const CTX = 1024;
    const PASSES = 3;
    if (tokens.length < PASSES * CTX) throw new Error(`bench text has ${tokens.length} tokens, ${PASSES * CTX} needed`);
    // llama-perplexity's passes: chunk k is tokens [k·CTX, (k+1)·CTX) with BOS first; it scores the second half.
    const passes = Array.from({ length: PASSES }, (_, k) => [tokens[0]!, ...tokens.slice(k * CTX + 1, (k + 1) * CTX)]);
    const results: string[] = [];
    let oursPpl = 0;
    for (const kernels of ["native", "tfjs"] as const) {
      const model = await loadGemma4(md.config, md.checkpoint, { kernels, baseDtype: "f32", transposed: "none" });
      const halves: number[] = [];
      scoreIds(model, passes[0]!, { chunk: CTX }); // warm-up
      const t0 = performance.now();
      for (const p of passes) halves.push(...scoreIds(model, p, { chunk: CTX }).logprobs.slice(CTX / 2 - 1));
      const seconds = (performance.now() - t0) / 1000;
      const ppl = Math.exp(-halves.reduce((a, b) => a + b, 0) / halves.length);
      if (!Number.isFinite(ppl)) throw new Error(`${kernels}: perplexity ${ppl}`);
      if (kernels === "native") oursPpl = ppl;
      results.push(
        `| owntune scoreIds, ${kernels} kernels (${describeStorage(model.storage)}) | ${((PASSES * CTX) / seconds).toFixed(0)} | ppl ${ppl.toFixed(3)} |`,
      );
      model.dispose();
    }
    await md.checkpoint.close();
    let llamaRate: number | undefined;
    if (llama) {
      const r = spawnSync(
        join(llama, "llama-perplexity"),
        ["-m", gguf, "-f", textFile, "-c", String(CTX), "-b", String(CTX), "--chunks", String(PASSES), "-t", String(THREADS)],
        { encoding: "utf8", maxBuffer: 1 << 26 },
      );
      const out = r.stdout + r.stderr;
      const perPass = /([\d.]+) seconds per pass/.exec(out);
      const final = /Final estimate: PPL = ([\d.]+)/.exec(out);
      if (r.status !== 0 || !perPass || !final) throw new Error(`llama-perplexity failed (${r.status}): ${out.slice(-2000)}`);
      const ppl = Number(final[1]);
      if (Math.abs(ppl - oursPpl) > 0.01 * ppl) throw new Error(`perplexities disagree: llama.cpp ${ppl}, ours ${oursPpl}`);
      llamaRate = CTX / Number(perPass[1]); // its first pass's time, as it prints it
      results.push(`| llama.cpp llama-perplexity (same F32 GGUF, ${THREADS} threads) | ${llamaRate.toFixed(0)} | ppl ${ppl.toFixed(3)} |`);
    }
    console.log(
      `\n| scorer (${PASSES} passes of ${CTX} tokens, logits at every position) | tokens/s | second-half perplexity |\n|---|---|---|\n${results.join("\n")}`,
    );
    if (llamaRate) {
      const ours = Number(/\| (\d+) \|/.exec(results[0]!)![1]);
      console.log(`score: ours (native) ÷ llama.cpp = ${(ours / llamaRate).toFixed(2)}`);
    }
  }

  if (sections.has("export")) {
    const md = await loadModelDir(modelDir);
    const eos = Array.isArray(config.eos_token_id) ? config.eos_token_id[0] : config.eos_token_id;
    const tokenizerFiles = await readTokenizerFiles(md.tokenizer.identity.dir, config.vocab_size, {
      bos: config.bos_token_id,
      eos,
      pad: config.pad_token_id,
    });
    await md.checkpoint.close();
    const source = await openGgufTensorSource(gguf);
    const rows: string[] = [];
    const outputs: string[] = [];
    for (const quantizer of ["ggml", "js"] as const) {
      const out = join(root, `ours-${quantizer}.gguf`);
      const before = process.env.OWNTUNE_KERNELS;
      if (quantizer === "js") process.env.OWNTUNE_KERNELS = "tfjs";
      resetQuantizerChoice();
      try {
        const t0 = performance.now();
        const r = await exportGguf({ config, source, tokenizer: tokenizerFiles, mix: "Q4_K_M", out, name: "bench", threads: THREADS });
        const seconds = (performance.now() - t0) / 1000;
        if (r.quantizer.name !== quantizer) throw new Error(`expected the ${quantizer} quantizer, ran ${r.quantizer.name}`);
        rows.push(
          `| owntune export, ${quantizer === "ggml" ? "ggml_quantize_chunk" : "JavaScript quantizers"} (${THREADS} worker threads) | ${seconds.toFixed(1)} s | ${(ggufBytes / 1e6 / seconds).toFixed(0)} |`,
        );
        outputs.push(out);
      } finally {
        if (before === undefined) delete process.env.OWNTUNE_KERNELS;
        else process.env.OWNTUNE_KERNELS = before;
        resetQuantizerChoice();
      }
    }
    if (!readFileSync(outputs[0]!).equals(readFileSync(outputs[1]!)))
      throw new Error("ggml and JavaScript quantizers wrote different files");
    if (llama && existsSync(join(llama, "llama-quantize"))) {
      const out = join(root, "llama.gguf");
      const t0 = performance.now();
      const r = spawnSync(join(llama, "llama-quantize"), [gguf, out, "Q4_K_M", String(THREADS)], { encoding: "utf8", maxBuffer: 1 << 26 });
      const seconds = (performance.now() - t0) / 1000;
      if (r.status !== 0) throw new Error(`llama-quantize failed: ${r.stderr.slice(-2000)}`);
      const sizes = [statSync(outputs[0]!).size, statSync(out).size];
      if (Math.abs(sizes[0]! - sizes[1]!) > 0.01 * sizes[1]!)
        throw new Error(`Q4_K_M files differ in size: ours ${sizes[0]}, llama.cpp ${sizes[1]}`);
      rows.push(
        `| llama.cpp llama-quantize (llama_model_quantize, ${THREADS} threads) | ${seconds.toFixed(1)} s | ${(ggufBytes / 1e6 / seconds).toFixed(0)} |`,
      );
    }
    console.log(
      `\n| Q4_K_M from the same ${(ggufBytes / GB).toFixed(2)} GB F32 GGUF | time (incl. reading and writing) | MB/s of F32 source |\n|---|---|---|\n${rows.join("\n")}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Memory: one full-size LoRA step per child process.

interface MemoryResult {
  which: string;
  loadSeconds: number;
  stepSeconds: number;
  afterLoadRss: number;
  peakRss: number;
  loss: number;
  storage: string;
  recompute: boolean;
}

function fullConfig(which: string): { config: Gemma4Config; baseDtype: BaseDtype } {
  return which === "e2b-bf16" ? { config: gemma4E2b(), baseDtype: "bf16" } : { config: gemma4_31b(), baseDtype: "q4_0" };
}

async function memoryChild(which: string): Promise<void> {
  await initBackend({ backend: "wasm", threads: THREADS });
  const { config, baseDtype } = fullConfig(which);
  let ple: TensorFileRows | undefined;
  let pleFile: string | undefined;
  if (config.hidden_size_per_layer_input > 0) {
    // The per-layer table is read from the checkpoint file in real runs: a sparse bf16 file stands in.
    pleFile = join(mkdtempSync(join(tmpdir(), "owntune-bench-ple-")), "ple.bin");
    const rows = config.vocab_size_per_layer_input;
    const width = config.num_hidden_layers * config.hidden_size_per_layer_input;
    const fd = openSync(pleFile, "w");
    ftruncateSync(fd, rows * width * 2);
    closeSync(fd);
    ple = { path: pleFile, offset: 0, rows, width, dtype: "BF16" };
  }
  try {
    const t0 = performance.now();
    const model = await loadGemma4(config, hashSource(config, "BF16", ple), { kernels: "native", baseDtype });
    const loadSeconds = (performance.now() - t0) / 1000;
    const afterLoadRss = process.memoryUsage().rss;
    const step = loraStepOn(model, MEMORY_T);
    const out: MemoryResult = {
      which,
      loadSeconds,
      afterLoadRss,
      stepSeconds: step.seconds,
      peakRss: process.resourceUsage().maxRSS * 1024,
      loss: step.loss,
      storage: step.storage,
      recompute: step.recompute,
    };
    console.log(JSON.stringify(out));
    model.dispose();
  } finally {
    if (pleFile) rmSync(join(pleFile, ".."), { recursive: true, force: true });
  }
}

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync("/proc/meminfo", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

function memorySection(): Map<string, MemoryResult> {
  const results = new Map<string, MemoryResult>();
  const need: Record<string, number> = { "e2b-bf16": 10 * GB, "31b-q4": 20 * GB };
  for (const which of (process.env.OWNTUNE_BENCH_NATIVE_MEMORY ?? "e2b-bf16,31b-q4").split(",")) {
    const free = memAvailable();
    if (free < need[which]!) {
      console.log(`${which}: skipped, ${(free / GB).toFixed(1)} GB available (needs ${need[which]! / GB} GB free)`);
      continue;
    }
    console.log(
      `${which}: one LoRA step at T = ${MEMORY_T} in a child process (${(free / GB).toFixed(1)} GB available, load ${loadavg()[0]!.toFixed(1)})`,
    );
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, "native"], {
      env: { ...process.env, [CHILD]: which },
      encoding: "utf8",
      maxBuffer: 1 << 24,
    });
    const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
    if (r.status !== 0 || !line) {
      console.log(`${which}: child failed (${r.status}): ${r.stderr.slice(-1500)}`);
      continue;
    }
    const m = JSON.parse(line) as MemoryResult;
    results.set(which, m);
    console.log(
      `| ${which === "e2b-bf16" ? "full E2B, bf16 base" : "full 31B, Q4_0 base"} | ${(m.afterLoadRss / GB).toFixed(2)} GB | **${(m.peakRss / GB).toFixed(2)} GB** | ${m.loadSeconds.toFixed(0)} s | ${m.stepSeconds.toFixed(0)} s (${(MEMORY_T / m.stepSeconds).toFixed(1)} tok/s) | ${m.storage}; recompute ${m.recompute} |`,
    );
  }
  return results;
}

// ---------------------------------------------------------------------------------------------

export default async function bench(): Promise<void> {
  const childWhich = process.env[CHILD];
  if (childWhich) return memoryChild(childWhich);
  const sections = new Set((process.env.OWNTUNE_BENCH_NATIVE ?? "step,score,export,memory").split(","));
  const rt = ggmlRuntime();
  if ("reason" in rt) throw new Error(`native kernels unavailable: ${rt.reason}`);
  const info = await initBackend({ backend: "wasm", threads: THREADS });
  console.log(
    `backend: ${describeBackend(info)}; ggml ${rt.libs.release} CPU ${rt.libs.cpu.variant}, ${rt.threads} threads; load average ${loadavg()
      .map((v) => v.toFixed(1))
      .join(" ")}`,
  );
  const rates = sections.has("step") ? await stepSection() : new Map<string, number>();
  if (sections.has("score") || sections.has("export")) {
    const root = mkdtempSync(join(tmpdir(), "owntune-bench-native-"));
    try {
      await scoreAndExportSections(sections, root);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const memory = sections.has("memory") ? memorySection() : new Map<string, MemoryResult>();

  // Projection: a step's useful FLOPs per token (T = 512), the decoder layers at the rate the matching
  // slice's layers ran and the head at the slice's head rate (same shapes: same H and vocabulary); the
  // full-size step itself where it ran.
  const lines: string[] = [];
  for (const [name, config, sliceKey, dtype, full] of [
    ["E2B", gemma4E2b(), "E2B 2-layer slice", "bf16", "e2b-bf16"],
    ["E2B", gemma4E2b(), "E2B 2-layer slice", "q4_0", undefined],
    ["E2B", gemma4E2b(), "E2B 2-layer slice", "q4_k", undefined],
    ["E4B (E2B slice rates)", gemma4E4b(), "E2B 2-layer slice", "bf16", undefined],
    ["E4B (E2B slice rates)", gemma4E4b(), "E2B 2-layer slice", "q4_0", undefined],
    ["31B", gemma4_31b(), "31B 2-layer slice", "q4_0", "31b-q4"],
    ["31B", gemma4_31b(), "31B 2-layer slice", "q4_k", undefined],
  ] as const) {
    const perToken = (2 * forwardFlops(config, MEMORY_T, MEMORY_T)) / MEMORY_T;
    const headPerToken = 2 * 2 * config.hidden_size * config.vocab_size;
    const layers = rates.get(`${sliceKey}:${dtype}:layers`);
    const head = rates.get(`${sliceKey}:${dtype}:head`);
    // Recomputation (on by default at these sizes) runs the layers' forward twice: 3 passes for the 2 counted.
    const recompute = recomputeByDefault({ config, layers: layerSpecs(config) }, 1, MEMORY_T) ? 1.5 : 1;
    const seconds = layers && head ? (recompute * (perToken - headPerToken)) / (layers * GB) + headPerToken / (head * GB) : undefined;
    const m = full ? memory.get(full) : undefined;
    const fromFull = m ? (1e6 * m.stepSeconds) / MEMORY_T / 3600 : undefined;
    lines.push(
      `| ${name} | ${dtype} | ${(perToken / GB).toFixed(1)} | ${fmt(layers)} / ${fmt(head)} | ${fmt(seconds && (1e6 * seconds) / 3600)} | ${fmt(fromFull)} |`,
    );
  }
  console.log(
    `\n| model | base | GFLOP per token per step | slice layers / head GFLOP/s | hours per 1M tokens (projected) | (measured full step) |\n|---|---|---|---|---|---|\n${lines.join("\n")}`,
  );
  console.log(
    `load average after: ${loadavg()
      .map((v) => v.toFixed(1))
      .join(" ")}`,
  );
}
