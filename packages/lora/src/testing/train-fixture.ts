// A small training setup for tests: gemma4-tiny (every dense Gemma 4 feature, the real 262,144-token
// vocabulary and tokenizer) written as a model folder, and a curated dataset of short pirate-style
// chats (datasets/tiny-pirate) packed into short rows. Not exported from the package.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { curate, curateSchema } from "@owntune/curate";
import { gemma4Tiny, initModel } from "@owntune/model";

export const PIRATE_DATA = fileURLToPath(new URL("../../../../datasets/tiny-pirate/data.jsonl", import.meta.url));

export interface TrainFixture {
  modelDir: string;
  dataDir: string;
}

/** Writes the model (seed 0) and a dataset of the first `examples` chats into `root`. */
export async function trainFixture(
  root: string,
  options: { examples?: number; seqLen?: number; valFraction?: number } = {},
): Promise<TrainFixture> {
  const { examples = 24, seqLen = 64, valFraction = 0.15 } = options;
  const modelDir = join(root, "model");
  const dataDir = join(root, "data");
  await initModel({ outDir: modelDir, config: gemma4Tiny(), seed: 0 });
  const input = join(root, "chats.jsonl");
  writeFileSync(input, readFileSync(PIRATE_DATA, "utf8").split("\n").slice(0, examples).join("\n") + "\n");
  await curate({
    config: curateSchema.parse({ inputs: [{ path: input }], seq_len: seqLen, packing: true, val_fraction: valFraction, workers: 0 }),
    outDir: dataDir,
    tokenizerDir: modelDir,
  });
  return { modelDir, dataDir };
}
