// Scoring: per-token log-probabilities and mean NLL, chunked through the KV cache, with and without an
// adapter, against the float64 reference forward pass.
import { afterAll, beforeAll, expect, it } from "vitest";
import { randomWeights } from "./init-weights.js";
import * as tf from "@tensorflow/tfjs";
import { fillNormal, seededRandom } from "@owntune/core";
import { gemma4FromWeights, type Gemma4Model } from "./model.js";
import { scoreIds } from "./score.js";
import { microConfig } from "./test-fixtures.js";
import { describeBackends, expectClose, testIds } from "./testing/check-model.js";
import { referenceLogprobs } from "./testing/reference-gemma4.js";

describeBackends("scoreIds", () => {
  const config = microConfig();
  let weights: Map<string, Float32Array>;
  let model: Gemma4Model;
  const ids = testIds(15, config.vocab_size, 4);
  beforeAll(async () => {
    weights = randomWeights(config, 21);
    model = await gemma4FromWeights(config, weights);
  });
  afterAll(() => model.dispose());

  it("gives log p(ids[t+1] | ids[..t]) and their mean NLL, chunk by chunk, as the float64 reference", () => {
    const ref = referenceLogprobs(config, weights, { ids });
    for (const chunk of [4, 512]) {
      const r = scoreIds(model, ids, { chunk });
      expect(r.ids).toEqual(ids);
      expect(r.logprobs).toHaveLength(ids.length - 1);
      expectClose(`score logprobs (chunk ${chunk}) vs float64`, r.logprobs, ref, 1e-5);
      expectClose(`score nll (chunk ${chunk})`, [r.nll], [-ref.reduce((a, b) => a + b, 0) / ref.length], 1e-5);
    }
    expect(Number.isNaN(scoreIds(model, [2]).nll)).toBe(true);
  });

  it("scores with an adapter as the reference with W + scale·B·A", () => {
    const rank = 2;
    const make = (out: number, inF: number, key: string) => ({
      rank,
      inFeatures: inF,
      outFeatures: out,
      a: fillNormal(new Float32Array(rank * inF), seededRandom(1, key + "A"), 0, 0.3),
      b: fillNormal(new Float32Array(out * rank), seededRandom(1, key + "B"), 0, 0.3),
    });
    const H = config.hidden_size;
    const pairs = new Map([
      ["layers.0.self_attn.v_proj", make(config.num_key_value_heads * config.head_dim, H, "v")],
      ["layers.3.mlp.up_proj", make(2 * config.intermediate_size, H, "up")],
    ]);
    const lora = new Map(
      [...pairs].map(([m, p]) => [
        m,
        { a: tf.tensor2d(p.a, [p.rank, p.inFeatures]), b: tf.tensor2d(p.b, [p.outFeatures, p.rank]), scale: 1.25 },
      ]),
    );
    const r = scoreIds(model, ids, { lora, chunk: 6 });
    for (const p of lora.values()) tf.dispose([p.a, p.b]);
    const ref = referenceLogprobs(config, weights, { ids, lora: new Map([...pairs].map(([m, p]) => [m, { ...p, scale: 1.25 }])) });
    expectClose("score with adapter vs float64", r.logprobs, ref, 1e-5);
    const plain = scoreIds(model, ids);
    expect(Math.abs(plain.nll - r.nll)).toBeGreaterThan(1e-3);
  });
});
