// Evaluation during training: the token-weighted loss on the val split (Σ NLL over every loss-bearing
// target ÷ their count, the same weighting as training) and its perplexity, and greedy sample
// generations from given prompts with the adapter as it stands.
import * as tf from "@tensorflow/tfjs";
import type { GemmaTokenizer } from "@owntune/tokenizer";
import { generate, lmLoss, type Gemma4Model, type LoraLayers } from "@owntune/model";
import type { CuratedDataset } from "@owntune/curate";
import { microBatches, RowStream } from "./train-data.js";

export interface EvalResult {
  loss: number;
  perplexity: number;
  /** Loss-bearing targets evaluated. */
  tokens: number;
  rows: number;
}

/** Token-weighted loss over the first `maxRows` val rows (all by default), in the dataset's order. */
export async function evaluate(
  model: Gemma4Model,
  lora: LoraLayers,
  dataset: CuratedDataset,
  batchSize: number,
  maxRows?: number,
): Promise<EvalResult | undefined> {
  const total = Math.min(dataset.rows("val"), maxRows ?? Infinity);
  if (total === 0) return undefined;
  const stream = new RowStream(dataset, "val", { seed: 0, start: { epoch: 0, offset: 0 }, shuffle: false, epochs: 1 });
  let nll = 0;
  let tokens = 0;
  let rows = 0;
  try {
    while (rows < total) {
      const taken = await stream.take(Math.min(batchSize, total - rows));
      if (taken.length === 0) break;
      rows += taken.length;
      for (const mb of microBatches(taken, batchSize)) {
        if (mb.targets === 0) continue;
        const s = tf.tidy(() => lmLoss(model, mb.batch, { lora, reduction: "sum" }));
        nll += (await s.data())[0]!;
        s.dispose();
        tokens += mb.targets;
      }
      await new Promise((r) => setImmediate(r));
    }
  } finally {
    await stream.close();
  }
  if (tokens === 0) return undefined;
  const loss = nll / tokens;
  return { loss, perplexity: Math.exp(loss), tokens, rows };
}

export interface Sample {
  prompt: string;
  completion: string;
  tokens: number;
}

/** Greedy completions of `prompts` (as chat user turns when `chat`), stopping at end-of-generation ids. */
export async function sampleCompletions(
  model: Gemma4Model,
  lora: LoraLayers,
  tokenizer: GemmaTokenizer,
  prompts: readonly string[],
  options: { maxTokens: number; chat: boolean },
): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const prompt of prompts) {
    const text = options.chat ? tokenizer.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true }) : prompt;
    const ids = tokenizer.encode(text);
    const stopIds = tokenizer.endOfGenerationIds;
    const r = await generate(model, ids, { maxTokens: options.maxTokens, stopIds, lora });
    const body = r.stoppedBy === "stop-id" ? r.ids.slice(0, -1) : r.ids;
    out.push({ prompt, completion: tokenizer.decode(body), tokens: r.ids.length });
  }
  return out;
}
