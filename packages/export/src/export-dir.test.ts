// The whole export stage on a tiny model folder with a PEFT adapter kept apart (--no-merge): the
// model GGUF, adapter.gguf, merged/ (F32), a Modelfile naming both, and verify run through it —
// and the merged folder's forward pass equals the base model's with the adapter applied. Then an
// adapter trained on a Q4_0 base (native kernels, QLoRA-style) exported merged: verify passes and
// the merge is into the full-precision checkpoint, not the quantized copy it was trained on.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { disposeLora, loraTensorsFrom, randomAdapter, readPeftAdapter, writePeftAdapter } from "@owntune/lora";
import * as tf from "@tensorflow/tfjs";
import { gemma4Tiny, initBackend, initModel, lmLoss, loadGemma4, loadModelDir, openCheckpoint, scoreIds } from "@owntune/model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportDir, type ExportDirResult } from "./export-dir.js";
import { ourScore } from "./score.js";
import { PROBE_TEXTS } from "./verify.js";

const root = mkdtempSync(join(tmpdir(), "owntune-export-dir-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, "model");
const adapterDir = join(root, "adapter");
const outDir = join(root, "export");
let result: ExportDirResult;

beforeAll(async () => {
  const config = gemma4Tiny();
  await initModel({ outDir: modelDir, config, seed: 5, dtype: "f32" });
  await writePeftAdapter(adapterDir, randomAdapter(config, { rank: 4, alpha: 8, seed: 9 }), { baseModel: "tiny" });
  result = await exportDir({
    modelDir,
    adapterDir,
    outDir,
    quant: "F32",
    noMerge: true,
    merged: true,
    mergedDtype: "f32",
    verify: true,
    score: ourScore,
    probes: [PROBE_TEXTS[1]!],
  });
}, 600_000);

describe("exportDir with an adapter kept apart", () => {
  it("appears complete or not at all: a failure after the GGUF and Modelfile are written leaves no folder and no temporary", async () => {
    const failed = join(root, "failed");
    // verify without a score function fails last, after every file but verify.json is written.
    await expect(exportDir({ modelDir, outDir: failed, quant: "F32", verify: true, threads: 1 })).rejects.toThrow(
      "verify needs a score function",
    );
    expect(existsSync(failed)).toBe(false);
    expect(readdirSync(root).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("writes the model GGUF, adapter.gguf, merged/, a Modelfile and verify.json", () => {
    for (const f of [
      "model-F32.gguf",
      "adapter.gguf",
      "merged/config.json",
      "merged/model.safetensors",
      "merged/tokenizer.json",
      "Modelfile",
      "verify.json",
    ]) {
      expect(existsSync(join(outDir, f)), f).toBe(true);
    }
    const modelfile = readFileSync(join(outDir, "Modelfile"), "utf8");
    expect(modelfile).toMatch(/^FROM \.\/model-F32\.gguf\nADAPTER \.\/adapter\.gguf\nTEMPLATE """/);
    expect(modelfile).toContain('PARAMETER stop "<end_of_turn>"');
    expect(modelfile).toContain('PARAMETER stop "<eos>"');
  });

  it("passes verify with the adapter applied on both sides", () => {
    const v = result.verify!;
    expect(v.adapterGguf).toBe(join(outDir, "adapter.gguf"));
    // Verified while the folder was still being built: the report names the final paths.
    expect(JSON.parse(readFileSync(join(outDir, "verify.json"), "utf8"))).toMatchObject({
      gguf: join(outDir, "model-F32.gguf"),
      adapterGguf: join(outDir, "adapter.gguf"),
    });
    expect(v.ok, JSON.stringify(v.probes.map((p) => [p.maxAbsDiff, p.tokenMismatchAt]))).toBe(true);
  });

  it("writes a merged/ folder whose forward pass equals the base model's with the adapter", { timeout: 300_000 }, async () => {
    await initBackend();
    const merged = await loadModelDir(join(outDir, "merged"));
    const base = await loadModelDir(modelDir);
    const peft = await readPeftAdapter(adapterDir, base.config);
    const mergedModel = await loadGemma4(merged.config, merged.checkpoint);
    const baseModel = await loadGemma4(base.config, base.checkpoint);
    const lora = loraTensorsFrom(peft.weights.pairs, peft.weights.scale);
    try {
      let max = 0;
      for (const text of [PROBE_TEXTS[0]!]) {
        const ids = base.tokenizer.encode(text);
        const a = scoreIds(mergedModel, ids).logprobs;
        const b = scoreIds(baseModel, ids, { lora }).logprobs;
        const without = scoreIds(baseModel, ids).logprobs;
        for (let k = 0; k < a.length; k++) max = Math.max(max, Math.abs(a[k]! - b[k]!));
        expect(Math.max(...a.map((v, k) => Math.abs(v - without[k]!)))).toBeGreaterThan(0.1);
      }
      console.log(`merged vs base+adapter: max |Δ log p| ${max.toExponential(2)}`);
      expect(max).toBeLessThan(1e-3);
    } finally {
      disposeLora(lora);
      mergedModel.dispose();
      baseModel.dispose();
      await merged.checkpoint.close();
      await base.checkpoint.close();
    }
  });
});

describe("exportDir with an adapter trained on a Q4_0 base", () => {
  it("merges into the full-precision checkpoint and passes verify", { timeout: 600_000 }, async () => {
    await initBackend();
    const base = await loadModelDir(modelDir);
    const model = await loadGemma4(base.config, base.checkpoint, { kernels: "native", baseDtype: "q4_0" });
    expect(model.storage).toMatchObject({ linears: "native", baseDtype: "q4_0" });
    // A few plain SGD steps on one text, LoRA on q/v/down (starting from a random adapter: B ≠ 0).
    const start = randomAdapter(base.config, { rank: 4, alpha: 8, seed: 3, targets: ["q_proj", "v_proj", "down_proj"], strength: 0.2 });
    const vars = new Map(
      [...start.pairs].map(([m, p]) => [
        m,
        {
          a: tf.variable(tf.tensor2d(p.a, [p.rank, p.inFeatures])),
          b: tf.variable(tf.tensor2d(p.b, [p.outFeatures, p.rank])),
          scale: start.scale,
        },
      ]),
    );
    const ids = base.tokenizer.encode(PROBE_TEXTS[0]!);
    const batch = { ids: [ids], lossMask: [ids.map(() => 1)] };
    const losses: number[] = [];
    for (let s = 0; s < 3; s++) {
      const { value, grads } = tf.variableGrads(
        () => lmLoss(model, batch, { lora: vars }),
        [...vars.values()].flatMap((p) => [p.a, p.b]),
      );
      losses.push(value.dataSync()[0]!);
      for (const p of vars.values()) for (const v of [p.a, p.b]) v.assign(tf.tidy(() => tf.sub(v, tf.mul(grads[v.name]!, 0.05))));
      tf.dispose([value, ...Object.values(grads)]);
    }
    expect(losses[2]!).toBeLessThan(losses[0]!);
    const trained = {
      scale: start.scale,
      pairs: new Map(
        [...start.pairs].map(([m, p]) => [
          m,
          { ...p, a: vars.get(m)!.a.dataSync() as Float32Array, b: vars.get(m)!.b.dataSync() as Float32Array },
        ]),
      ),
    };
    tf.dispose([...vars.values()].flatMap((p) => [p.a, p.b]));
    model.dispose();
    await base.checkpoint.close();
    const trainedDir = join(root, "trained-on-q4");
    const out = join(root, "export-q4-trained");
    await writePeftAdapter(trainedDir, trained, { baseModel: "tiny" });
    const r = await exportDir({
      modelDir,
      adapterDir: trainedDir,
      outDir: out,
      quant: "F32",
      merged: true,
      mergedDtype: "f32",
      verify: true,
      score: ourScore,
      probes: [PROBE_TEXTS[1]!],
    });
    expect(r.verify!.ok, JSON.stringify(r.verify!.probes.map((p) => [p.maxAbsDiff, p.tokenMismatchAt]))).toBe(true);
    // merged = W (the f32 checkpoint) + scale·B·A, to float32 rounding: no trace of the Q4_0 copy.
    const name = "layers.1.mlp.down_proj";
    const pair = trained.pairs.get(name)!;
    const [orig, merged] = [await openCheckpoint(modelDir), await openCheckpoint(join(out, "merged"))];
    const w = await orig.read(`${name}.weight`);
    const m = await merged.read(`${name}.weight`);
    await Promise.all([orig.close(), merged.close()]);
    let max = 0;
    for (let o = 0; o < pair.outFeatures; o++) {
      for (let i = 0; i < pair.inFeatures; i++) {
        let ba = 0;
        for (let k = 0; k < pair.rank; k++) ba += pair.b[o * pair.rank + k]! * pair.a[k * pair.inFeatures + i]!;
        max = Math.max(max, Math.abs(m[o * pair.inFeatures + i]! - (w[o * pair.inFeatures + i]! + trained.scale * ba)));
      }
    }
    expect(max).toBeLessThan(1e-6);
  });
});
