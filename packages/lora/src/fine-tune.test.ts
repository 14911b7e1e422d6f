// The trainer end to end on gemma4-tiny (every dense Gemma 4 feature, KV sharing included) with a tiny
// curated dataset: the loss falls and the adapter grows; k accumulated micro-batches equal one batch k
// times larger; a packed row's loss is the sum of its documents' alone; the training forward scores
// as `score` does; a non-finite loss stops before the update with the last checkpoint intact; an
// interrupted run resumes to a byte-identical adapter; the run directory and checkpoint files.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { CuratedDataset } from "@owntune/curate";
import type { GemmaTokenizer } from "@owntune/tokenizer";
import { RunFailure, silentProgress, UserError } from "@owntune/core";
import {
  expectedTensors,
  gemma4FromWeights,
  initBackend,
  lmLoss,
  loadGemma4,
  loadModelDir,
  openCheckpoint,
  scoreIds,
  tokenLogprobs,
  type Gemma4Model,
} from "@owntune/model";
import { disposeLora, loraTensorsFrom } from "./adapter.js";
import { mergeLora } from "./merge.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdamW } from "./adamw.js";
import { fineTune, type FineTuneOptions } from "./fine-tune.js";
import { LoraState } from "./lora-state.js";
import { readPeftAdapter } from "./peft.js";
import { planLora } from "./targets.js";
import { accumulateGradients, evalDecision, freshProgress, train } from "./train.js";
import { listCheckpoints, loadCheckpoint, sha256File } from "./train-checkpoint.js";
import { trainSchema, type TrainConfig } from "./train-config.js";
import { microBatches, RowStream, type Row } from "./train-data.js";
import { trainFixture, type TrainFixture } from "./testing/train-fixture.js";

const root = mkdtempSync(join(tmpdir(), "owntune-train-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let fx: TrainFixture;
let model: Gemma4Model;
let tokenizer: GemmaTokenizer;
let runs = 0;
let trainedAdapter = "";

beforeAll(async () => {
  await initBackend();
  fx = await trainFixture(root);
  const dir = await loadModelDir(fx.modelDir);
  tokenizer = dir.tokenizer;
  model = await loadGemma4(dir.config, dir.checkpoint);
  await dir.checkpoint.close();
});
afterAll(() => model?.dispose());

const config = (o: Record<string, unknown> = {}): TrainConfig => trainSchema.parse({ eval_every: 0, save_every: 0, ...o });
const run = (c: TrainConfig, o: Partial<FineTuneOptions> = {}) =>
  fineTune({ modelDir: fx.modelDir, dataDir: fx.dataDir, outDir: join(root, `run${runs++}`), config: c, ...o });
const metrics = (dir: string) =>
  readFileSync(join(dir, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number | string>);
const trainRows = (dir: string) => metrics(dir).filter((r) => r.type === "train");

async function rows(n: number): Promise<Row[]> {
  const ds = await CuratedDataset.open(fx.dataDir);
  const s = new RowStream(ds, "train", { seed: 0, start: { epoch: 0, offset: 0 } });
  const out = await s.take(n);
  await s.close();
  return out;
}

describe("LoRA training", () => {
  it("lowers the loss on a tiny memorisation set and grows the adapter", async () => {
    const r = await run(
      config({ steps: 12, batch_size: 4, optimizer: { lr: 5e-3 }, schedule: { kind: "constant", warmup_steps: 2 }, eval_every: 6 }),
    );
    expect(r.status).toBe("complete");
    const losses = trainRows(r.outDir).map((x) => x.loss as number);
    console.log(`loss by step: ${losses.map((l) => l.toFixed(2)).join(" ")}`);
    expect(losses).toHaveLength(12);
    const early = (losses[0]! + losses[1]!) / 2;
    const late = (losses[10]! + losses[11]!) / 2;
    expect(late).toBeLessThan(early - 3);
    const evals = metrics(r.outDir).filter((x) => x.type === "eval");
    expect(evals.map((e) => e.step)).toEqual([6, 12]);
    expect(evals[1]!.eval_loss as number).toBeLessThan(evals[0]!.eval_loss as number);
    const adapter = await readPeftAdapter(r.adapterDir, model.config);
    const bNorm = [...adapter.weights.pairs.values()].reduce((s, p) => s + p.b.reduce((t, x) => t + x * x, 0), 0);
    expect(bNorm).toBeGreaterThan(0); // B starts at zero
    expect(adapter.config).toMatchObject({
      r: 8,
      lora_alpha: 16,
      peft_type: "LORA",
      task_type: "CAUSAL_LM",
      lora_dropout: 0,
      use_rslora: false,
    });
    expect(adapter.config.target_modules).toEqual(["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]);
    expect(adapter.weights.pairs.has("layers.4.self_attn.k_proj")).toBe(false); // KV-shared: no dead tensor
    expect(adapter.weights.pairs.has("layers.1.self_attn.v_proj")).toBe(false); // k=v
    const record = JSON.parse(readFileSync(join(r.outDir, "run.json"), "utf8"));
    expect(record).toMatchObject({ format: "owntune-run", status: "complete", steps: { total: 12, done: 12 }, adapter_step: 12, seed: 0 });
    expect(readFileSync(join(r.outDir, "report.html"), "utf8")).toContain("<h1>Training report</h1>");
    trainedAdapter = r.adapterDir;
  });

  it("gives the same log-probabilities with the trained adapter merged into the weights as beside them", async () => {
    const adapter = await readPeftAdapter(trainedAdapter, model.config);
    const cp = await openCheckpoint(fx.modelDir, { config: model.config });
    const weights = new Map<string, Float32Array>();
    for (const t of expectedTensors(model.config)) {
      const w = await cp.read(t.name);
      const pair = adapter.weights.pairs.get(t.name.replace(/\.weight$/, ""));
      weights.set(t.name, pair ? mergeLora(w, pair, adapter.weights.scale) : w);
    }
    await cp.close();
    // Both sides in float32 on TensorFlow.js (ggml's bf16 head would round one side's activations).
    const merged = await gemma4FromWeights(model.config, weights, { kernels: "tfjs" });
    const cp2 = await openCheckpoint(fx.modelDir, { config: model.config });
    const base = await loadGemma4(model.config, cp2, { kernels: "tfjs", placement: "device" });
    await cp2.close();
    const lora = loraTensorsFrom(adapter.weights.pairs, adapter.weights.scale);
    try {
      const [row] = await rows(1);
      const batch = { ids: [row!.inputIds], positions: [row!.positionIds], segments: [row!.segmentIds] };
      const a = tokenLogprobs(merged, batch)[0]!;
      const b = tokenLogprobs(base, batch, { lora })[0]!;
      const plain = tokenLogprobs(base, batch)[0]!;
      let worst = 0;
      let moved = 0;
      a.forEach((x, i) => {
        if (Number.isNaN(x)) return;
        worst = Math.max(worst, Math.abs(x - b[i]!));
        moved = Math.max(moved, Math.abs(x - plain[i]!));
      });
      console.log(
        `merged vs base + adapter: max |Δ log p| ${worst.toExponential(2)} (the adapter moves them by up to ${moved.toFixed(2)})`,
      );
      expect(worst).toBeLessThan(1e-3);
      expect(moved).toBeGreaterThan(0.5);
    } finally {
      disposeLora(lora);
      merged.dispose();
      base.dispose();
    }
  });

  it("gives k accumulated micro-batches the loss and gradient of one batch k times larger (ragged masks)", async () => {
    const lora = new LoraState(planLora(model.config, config().lora).modules, 4, 2, { seed: 1 });
    try {
      // Non-zero B so every gradient is non-trivial.
      lora.params.forEach((p, i) => i % 2 === 1 && p.forEach((_, j) => (p[j] = 0.01 * Math.sin(j + i))));
      lora.sync();
      const window = await rows(6);
      const whole = microBatches(window, 6);
      const parts = microBatches(window, 2);
      const targets = whole[0]!.targets;
      expect(new Set(parts.map((p) => p.targets)).size).toBeGreaterThan(1); // ragged: unequal target counts
      expect(parts.reduce((n, p) => n + p.targets, 0)).toBe(targets);
      const g1 = lora.params.map((p) => new Float32Array(p.length));
      const gk = lora.params.map((p) => new Float32Array(p.length));
      const loss1 = accumulateGradients(model, lora, whole[0]!, targets, g1);
      const lossK = parts.reduce((s, mb) => s + accumulateGradients(model, lora, mb, targets, gk), 0);
      expect(Math.abs(loss1 - lossK)).toBeLessThan(1e-5 * loss1);
      let maxRel = 0;
      g1.forEach((a, i) => a.forEach((x, j) => (maxRel = Math.max(maxRel, Math.abs(x - gk[i]![j]!) / (Math.abs(x) + 1e-3)))));
      console.log(`accumulated vs one batch: loss ${loss1} vs ${lossK}, max relative gradient difference ${maxRel.toExponential(2)}`);
      expect(maxRel).toBeLessThan(1e-3);
      // The peers' bug, for contrast: the mean of per-micro-batch means is another number.
      const meanOfMeans =
        parts.reduce(
          (s, mb) =>
            s +
            accumulateGradients(
              model,
              lora,
              mb,
              mb.targets,
              lora.params.map((p) => new Float32Array(p.length)),
            ),
          0,
        ) / parts.length;
      expect(Math.abs(meanOfMeans - loss1)).toBeGreaterThan(1e-3);
    } finally {
      lora.dispose();
    }
  });

  it("trains the same adapter with grad_accum 3 × batch_size 2 as with batch_size 6, down to a partial last window", async () => {
    // On TensorFlow.js kernels (float32 throughout): ggml's bf16 head rounds activations to bf16, whose
    // flips would blur an arithmetic comparison.
    const common = { epochs: 1, optimizer: { lr: 1e-3 }, schedule: { kind: "linear", warmup_steps: 1 }, max_grad_norm: null };
    const exact = { kernels: "tfjs" as const };
    const [a, b] = [
      await run(config({ ...common, batch_size: 6 }), exact),
      await run(config({ ...common, batch_size: 2, grad_accum: 3 }), exact),
    ];
    const n = (await CuratedDataset.open(fx.dataDir)).rows("train");
    expect(n % 6).not.toBe(0); // the last step holds fewer rows
    expect(a.totalSteps).toBe(Math.ceil(n / 6));
    expect(b.totalSteps).toBe(a.totalSteps);
    const [pa, pb] = [await readPeftAdapter(a.adapterDir, model.config), await readPeftAdapter(b.adapterDir, model.config)];
    let maxDiff = 0;
    let maxAbs = 0;
    for (const [m, p] of pa.weights.pairs) {
      const q = pb.weights.pairs.get(m)!;
      p.b.forEach((x, i) => ((maxDiff = Math.max(maxDiff, Math.abs(x - q.b[i]!))), (maxAbs = Math.max(maxAbs, Math.abs(x)))));
    }
    console.log(
      `grad_accum vs one batch after ${a.totalSteps} steps: max |ΔB| ${maxDiff.toExponential(2)} (max |B| ${maxAbs.toExponential(2)})`,
    );
    expect(maxDiff).toBeLessThan(1e-3 * maxAbs);
    // Same rows in the same order: the per-step target counts agree.
    expect(trainRows(a.outDir).map((r) => r.trained_tokens)).toEqual(trainRows(b.outDir).map((r) => r.trained_tokens));
  });

  it("scores a packed row as the sum of its documents run alone, and as score does through the KV cache", async () => {
    const [row] = await rows(30).then((rs) => rs.filter((r) => new Set(r.segmentIds).size >= 3)); // ≥ 2 documents (+ padding)
    expect(row).toBeDefined();
    const T = row!.segmentIds.length;
    const packed = { ids: [row!.inputIds], positions: [row!.positionIds], segments: [row!.segmentIds], lossMask: [row!.lossMask] };
    const total = tf.tidy(() => lmLoss(model, packed, { reduction: "sum" }).dataSync()[0]!);
    let alone = 0;
    const lp = tokenLogprobs(model, packed)[0]!;
    for (const seg of new Set(row!.segmentIds)) {
      if (seg === 0) continue;
      const idx = [...Array(T).keys()].filter((t) => row!.segmentIds[t] === seg);
      const doc = { ids: [idx.map((t) => row!.inputIds[t]!)], lossMask: [idx.map((t) => row!.lossMask[t]!)] };
      alone += tf.tidy(() => lmLoss(model, doc, { reduction: "sum" }).dataSync()[0]!);
      // The training forward (no cache, packed, KV-shared layers reading their source's K/V) vs score (cache, chunks of 5).
      const s = scoreIds(model, doc.ids[0]!, { chunk: 5 });
      const fromPacked = idx.slice(1).map((t) => lp[t]!);
      const worst = Math.max(...s.logprobs.map((v, i) => Math.abs(v - fromPacked[i]!)));
      expect(worst).toBeLessThan(1e-4);
    }
    expect(Math.abs(total - alone)).toBeLessThan(1e-4 * alone);
  });

  it("stops at a non-finite loss before the update, leaving the last checkpoint intact", async () => {
    const outDir = join(root, "nan");
    const c = config({ steps: 5, batch_size: 2, save_every: 2 });
    const plan = planLora(model.config, c.lora);
    const lora = new LoraState(plan.modules, 8, 2, { seed: 0 });
    const optimizer = new AdamW(
      { betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0 },
      lora.params.map((p) => p.length),
    );
    // Poison one base weight's forward from the 4th micro-batch on (step 4 here).
    const w = model.linears.get("layers.2.mlp.down_proj.weight");
    const forward = w.forward;
    let calls = 0;
    (w as { forward: typeof forward }).forward = (x) => (++calls > 3 ? tf.tidy(() => tf.mul(forward(x), NaN)) : forward(x));
    const start = freshProgress();
    const { mkdirSync } = await import("node:fs");
    mkdirSync(outDir);
    let before: Float32Array[] = [];
    try {
      const e = await train({
        runDir: outDir,
        model,
        tokenizer,
        dataset: await CuratedDataset.open(fx.dataDir),
        config: c,
        seed: 0,
        lora,
        optimizer,
        totalSteps: 5,
        totalRows: undefined,
        start,
        configDigest: "test",
        peft: {},
        progress: silentProgress,
        log: () => {},
        onStep: async (p) => void (p.step === 3 && (before = lora.params.map((x) => x.slice()))),
      }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RunFailure);
      expect((e as RunFailure).message).toMatch(/^step 4: the loss is NaN; the update was not applied and the last checkpoint is intact/);
      lora.params.forEach((p, i) => expect(p).toEqual(before[i])); // step 4 changed nothing
      const cps = await listCheckpoints(outDir);
      expect(cps.map((x) => x.step)).toEqual([2]);
      const loaded = await loadCheckpoint(
        cps[0]!.dir,
        model.config,
        plan.modules.flatMap((m) => [`${m.name}.lora_A`, `${m.name}.lora_B`]),
      );
      expect(loaded.state.step).toBe(2);
      expect(metrics(outDir).map((r) => r.step)).toEqual([1, 2, 3]);
    } finally {
      (w as { forward: typeof forward }).forward = forward;
      lora.dispose();
    }
  });

  it("refuses, before loading anything, a run whose estimated memory does not fit, naming the setting", async () => {
    const outDir = join(root, "too-big");
    const e = await fineTune({
      modelDir: fx.modelDir,
      dataDir: fx.dataDir,
      outDir,
      config: config({ steps: 1, batch_size: 100_000 }),
      configFile: "t.yaml",
    }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).format()).toMatch(
      /^t\.yaml: batch_size: estimated peak memory [\d.]+ GiB exceeds this (machine's memory|container's memory limit) \([\d.]+ GiB\); lower batch_size \(activations: [\d.]+ GiB for 100000 × 64 tokens\)/,
    );
    expect(existsSync(outDir)).toBe(false);
  });

  it("decides keep-best and early stopping from the eval loss", () => {
    const p = { best: null, evalsWithoutImprovement: 0 };
    expect(evalDecision(p, 3, { patience: 2, min_delta: 0.1 })).toEqual({ best: true, evalsWithoutImprovement: 0, stop: false });
    const at3 = { best: { eval_loss: 3, step: 10 }, evalsWithoutImprovement: 0 };
    // better, but by less than min_delta: the best weights move, the patience counter does not reset
    expect(evalDecision(at3, 2.95, { patience: 2, min_delta: 0.1 })).toEqual({ best: true, evalsWithoutImprovement: 1, stop: false });
    expect(evalDecision({ ...at3, evalsWithoutImprovement: 1 }, 3.2, { patience: 2, min_delta: 0.1 })).toEqual({
      best: false,
      evalsWithoutImprovement: 2,
      stop: true,
    });
    expect(evalDecision({ ...at3, evalsWithoutImprovement: 5 }, 2.5, undefined)).toEqual({
      best: true,
      evalsWithoutImprovement: 0,
      stop: false,
    });
  });

  it("resumes an interrupted run to a byte-identical adapter, keeping the logs continuous", async () => {
    const c = config({ steps: 7, batch_size: 2, save_every: 2, eval_every: 3, keep_best: true, log_every: 1, lora: { dropout: 0.1 } });
    const whole = await run(c);
    const outDir = join(root, "interrupted");
    const controller = new AbortController();
    const first = await fineTune({
      modelDir: fx.modelDir,
      dataDir: fx.dataDir,
      outDir,
      config: c,
      signal: controller.signal,
      log: (l) => void (l.startsWith("step 3/") || l.startsWith("step 5/") ? controller.abort() : undefined),
    });
    expect(first.status).toBe("interrupted");
    const afterFirst = (await listCheckpoints(outDir)).map((x) => x.step);
    expect(afterFirst[0]).toBeGreaterThanOrEqual(3);
    expect(existsSync(join(outDir, "adapter"))).toBe(false);
    // Without --resume the folder is refused, with it the run continues.
    const refused = await fineTune({ modelDir: fx.modelDir, dataDir: fx.dataDir, outDir, config: c }).catch((x: unknown) => x);
    expect((refused as UserError).format()).toMatch(
      /: holds this run, interrupted after step \d of 7; pass --resume to continue it, or --force to start over$/,
    );
    const second = await fineTune({ modelDir: fx.modelDir, dataDir: fx.dataDir, outDir, config: c, resume: true });
    expect(second.status).toBe("complete");
    for (const f of ["adapter_model.safetensors", "adapter_config.json"]) {
      expect(await sha256File(join(outDir, "adapter", f))).toBe(await sha256File(join(whole.adapterDir, f)));
    }
    expect(trainRows(outDir).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(trainRows(outDir).map((r) => r.loss)).toEqual(trainRows(whole.outDir).map((r) => r.loss));
    expect((await listCheckpoints(outDir)).length).toBeLessThanOrEqual(3);
    // A complete identical run is reused; a damaged checkpoint file is named.
    expect((await fineTune({ modelDir: fx.modelDir, dataDir: fx.dataDir, outDir, config: c })).status).toBe("reused");
    const cp = (await listCheckpoints(outDir))[0]!;
    const file = join(cp.dir, "optimizer.safetensors");
    const bytes = readFileSync(file);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0x40;
    writeFileSync(file, bytes);
    const e = await loadCheckpoint(cp.dir, model.config, []).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).format()).toMatch(/optimizer\.safetensors: sha256 [0-9a-f]{12}… does not match trainer_state\.json/);
    expect(readdirSync(cp.dir).sort()).toEqual([
      "adapter_config.json",
      "adapter_model.safetensors",
      "best_adapter.safetensors",
      "optimizer.safetensors",
      "trainer_state.json",
    ]);
  });
});
