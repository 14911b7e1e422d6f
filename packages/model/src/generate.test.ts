// Generation: cached greedy decoding against argmax of full recomputes, stop ids, seeded sampling, and
// the sampler's distribution against the temperature / top-k / top-p definitions.
import * as tf from "@tensorflow/tfjs";
import { afterAll, beforeAll, expect, it } from "vitest";
import { seededRandom } from "@owntune/core";
import { forwardLogits } from "./gemma4.js";
import { argmax, generate, sample } from "./generate.js";
import { randomWeights } from "./init-weights.js";
import { gemma4FromWeights, type Gemma4Model } from "./model.js";
import { microConfig } from "./test-fixtures.js";
import { describeBackends, testIds } from "./testing/check-model.js";

describeBackends("generate", () => {
  const config = microConfig({ sliding_window: 3 });
  let model: Gemma4Model;
  const prompt = testIds(5, config.vocab_size, 3);
  beforeAll(async () => {
    model = await gemma4FromWeights(config, randomWeights(config, 11));
  });
  afterAll(() => model.dispose());

  it("decodes greedily with the cache exactly as argmax over full recomputes, past the window", async () => {
    const result = await generate(model, prompt, { maxTokens: 12, prefillChunk: 2 });
    expect(result.ids).toHaveLength(12);
    expect(result.stoppedBy).toBe("max-tokens");
    const seq = [...prompt];
    for (let n = 0; n < 12; n++) {
      const logits = forwardLogits(model, { ids: [seq] });
      const last = logits.slice([0, seq.length - 1, 0], [1, 1, -1]).dataSync();
      logits.dispose();
      seq.push(argmax(last));
    }
    expect(result.ids).toEqual(seq.slice(prompt.length));
  });

  it("stops at the model's context length (max_position_embeddings), and refuses a prompt past it", async () => {
    const short = await gemma4FromWeights({ ...config, max_position_embeddings: 8 }, randomWeights(config, 11));
    try {
      const r = await generate(short, prompt, { maxTokens: 10 });
      expect(r.stoppedBy).toBe("context-length");
      expect(prompt.length + r.ids.length).toBe(8);
      expect((await generate(short, prompt, { maxTokens: 10 })).ids).toEqual((await generate(model, prompt, { maxTokens: 3 })).ids);
      await expect(generate(short, testIds(9, config.vocab_size, 1), { maxTokens: 1 })).rejects.toThrow(
        "the prompt has 9 tokens, more than the model's context of 8",
      );
    } finally {
      short.dispose();
    }
  });

  it("stops at an end-of-generation id and keeps it", async () => {
    const free = await generate(model, prompt, { maxTokens: 6 });
    const stopAt = free.ids[3]!;
    const first = free.ids.indexOf(stopAt);
    const stopped = await generate(model, prompt, { maxTokens: 6, stopIds: [stopAt] });
    expect(stopped.stoppedBy).toBe("stop-id");
    expect(stopped.ids).toEqual(free.ids.slice(0, first + 1));
  });

  it("samples reproducibly from a seed, and top-k 1 is greedy", async () => {
    const before = tf.memory().numTensors;
    const a = await generate(model, prompt, { maxTokens: 8, temperature: 1.5, seed: 42 });
    const b = await generate(model, prompt, { maxTokens: 8, temperature: 1.5, seed: 42 });
    expect(a.ids).toEqual(b.ids);
    expect(a.seed).toBe(42);
    const greedy = await generate(model, prompt, { maxTokens: 8 });
    const topOne = await generate(model, prompt, { maxTokens: 8, temperature: 2, topK: 1, seed: 1 });
    expect(topOne.ids).toEqual(greedy.ids);
    expect(tf.memory().numTensors, "tensors left behind by generate").toBe(before);
  });
});

it("samples with the probabilities that temperature, top-k and top-p define", () => {
  const logits = [2, 1, 0.5, 0, -1, 3];
  const draws = 40_000;
  const cases = [
    { temperature: 1, topK: 0, topP: 1 },
    { temperature: 0.5, topK: 3, topP: 1 },
    { temperature: 1, topK: 0, topP: 0.8 },
  ];
  for (const opts of cases) {
    // Expected: softmax(logits / T) over the k best, then the smallest prefix reaching p, renormalized.
    const order = logits.map((_, i) => i).sort((x, y) => logits[y]! - logits[x]!);
    let kept = opts.topK > 0 ? order.slice(0, opts.topK) : order;
    const w = kept.map((i) => Math.exp(logits[i]! / opts.temperature));
    const total = w.reduce((x, y) => x + y, 0);
    let cum = 0;
    const n = kept.findIndex((_, j) => (cum += w[j]! / total) >= opts.topP);
    kept = kept.slice(0, n + 1);
    const z = kept.reduce((s, i) => s + Math.exp(logits[i]! / opts.temperature), 0);
    const expected = logits.map((l, i) => (kept.includes(i) ? Math.exp(l / opts.temperature) / z : 0));
    const counts = new Array<number>(logits.length).fill(0);
    const rng = seededRandom(3, JSON.stringify(opts));
    for (let d = 0; d < draws; d++) counts[sample(logits, opts, rng)]!++;
    counts.forEach((c, i) => {
      const p = expected[i]!;
      const sd = Math.sqrt((p * (1 - p)) / draws);
      expect(Math.abs(c / draws - p), `${JSON.stringify(opts)} token ${i}: ${c / draws} vs ${p}`).toBeLessThanOrEqual(5 * sd + 1e-12);
    });
  }
});
