// `owntune init-model`: a complete model directory in Hugging Face layout (Gemma4ForCausalLM) with
// deterministic random weights — config.json, model.safetensors (or shards + index), tokenizer files,
// generation_config.json — written atomically, tensor by tensor. Same seed and config → same bytes.
import { existsSync } from "node:fs";
import { copyFile } from "node:fs/promises";
import { join } from "node:path";
import { withAtomicDir, writeFileAtomic } from "./atomic-write.js";
import { shardFileName, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./checkpoint.js";
import { configToJson, countParameters, type Gemma4Config } from "./config.js";
import { UserError } from "./errors.js";
import { randomTensorChunks } from "./init-weights.js";
import { checkTokenizerFits } from "./model-dir.js";
import { silentProgress, type Progress } from "./progress.js";
import { DTYPE_BYTES, numElements, writeSafetensors, type FloatDtype, type TensorToWrite } from "./safetensors.js";
import { expectedTensors, TEXT_PREFIX, type TensorSpec } from "./tensors.js";
import { defaultTokenizerDir, loadDefaultTokenizer, loadTokenizer, type TokenizerIdentity } from "./tokenizer.js";

/** Shard size when none is given: transformers' default `max_shard_size` ("5GB" = 5·10⁹ bytes). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
/** Tokenizer files copied from the tokenizer folder when present. */
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"] as const;

export interface InitModelOptions {
  outDir: string;
  config: Gemma4Config;
  /** Seed of every tensor's stream (a 32-bit unsigned integer). */
  seed: number;
  /** Stored dtype of every tensor (published checkpoints are bf16). Default bf16. */
  dtype?: "bf16" | "f32";
  /** Folder with tokenizer.json (+ tokenizer_config.json); default: the Gemma 3 tokenizer package. */
  tokenizerDir?: string;
  /** Largest shard in bytes; above it the weights are split into model-0000k-of-0000n files + index. */
  maxShardBytes?: number;
  /** Counts bytes of weights written. */
  progress?: Progress;
}

export interface InitModelResult {
  outDir: string;
  /** Files written, relative to outDir, sorted. */
  files: string[];
  parameters: number;
  weightBytes: number;
  tokenizer: TokenizerIdentity;
  /** The Gemma 3 tokenizer was written (no Gemma 4 chat tokens): tell the user. */
  isDefaultGemma3: boolean;
}

/** Splits tensors into consecutive shards of at most `maxBytes` (a larger tensor gets a shard of its own). */
export function planShards<T extends { bytes: number }>(tensors: readonly T[], maxBytes: number): T[][] {
  const shards: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const t of tensors) {
    if (current.length > 0 && size + t.bytes > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += t.bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/**
 * Writes a model directory with deterministic random weights (`randomTensor` of init-weights.ts,
 * streamed one tensor at a time in bounded chunks). The directory appears only when complete; an
 * existing one is replaced then.
 */
export async function initModel(options: InitModelOptions): Promise<InitModelResult> {
  const { outDir, config, seed } = options;
  const dtype: FloatDtype = (options.dtype ?? "bf16") === "bf16" ? "BF16" : "F32";
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  const progress = options.progress ?? silentProgress;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new UserError(`seed must be an integer in [0, 4294967295], got ${seed}`, { field: "seed" });
  if (!(maxShardBytes > 0)) throw new UserError(`maxShardBytes must be positive, got ${maxShardBytes}`, { field: "maxShardBytes" });

  const tokenizerDir = options.tokenizerDir ?? defaultTokenizerDir();
  const tokenizer = options.tokenizerDir === undefined ? await loadDefaultTokenizer() : await loadTokenizer(tokenizerDir);
  checkTokenizerFits(tokenizer, config, tokenizerDir, []);

  const specs = expectedTensors(config).map((spec) => ({ spec, bytes: numElements(spec.shape) * DTYPE_BYTES[dtype] }));
  const weightBytes = specs.reduce((a, s) => a + s.bytes, 0);
  const shards = planShards(specs, maxShardBytes);
  const generationConfig = {
    bos_token_id: tokenizer.bosId,
    eos_token_id: [...tokenizer.endOfGenerationIds],
    pad_token_id: tokenizer.padId ?? config.pad_token_id,
  };

  const files = await withAtomicDir(outDir, async (tmp) => {
    const written: string[] = [];
    const writeJson = async (name: string, value: unknown) => {
      await writeFileAtomic(join(tmp, name), JSON.stringify(value, null, 2) + "\n");
      written.push(name);
    };
    await writeJson("config.json", configToJson(config));
    await writeJson("generation_config.json", generationConfig);
    for (const name of TOKENIZER_FILES) {
      if (!existsSync(join(tokenizerDir, name))) continue;
      await copyFile(join(tokenizerDir, name), join(tmp, name));
      written.push(name);
    }

    progress.start(weightBytes, "init-model", "B");
    const weightMap: Record<string, string> = {};
    for (const [k, shard] of shards.entries()) {
      const file = shards.length === 1 ? SINGLE_WEIGHTS_FILE : shardFileName(k, shards.length);
      const tensors: TensorToWrite[] = shard.map(({ spec }) => ({ name: TEXT_PREFIX + spec.name, dtype, shape: spec.shape }));
      await writeSafetensors(join(tmp, file), tensors, (_t, i) => countingChunks(config, shard[i]!.spec, seed, progress, DTYPE_BYTES[dtype]), {
        metadata: { format: "pt" },
      });
      for (const t of tensors) weightMap[t.name] = file;
      written.push(file);
    }
    progress.stop();
    if (shards.length > 1) {
      const sorted = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      await writeJson(WEIGHTS_INDEX_FILE, { metadata: { total_size: weightBytes }, weight_map: sorted });
    }
    return written.sort();
  });
  return {
    outDir,
    files,
    parameters: countParameters(config).total,
    weightBytes,
    tokenizer: tokenizer.identity,
    isDefaultGemma3: tokenizer.isDefaultGemma3,
  };
}

/** A tensor's random values in chunks, reporting each chunk's stored bytes to `progress`. */
function* countingChunks(config: Gemma4Config, spec: TensorSpec, seed: number, progress: Progress, bytesPerElement: number): Generator<Float32Array> {
  for (const chunk of randomTensorChunks(config, spec, seed)) {
    yield chunk;
    progress.increment(chunk.length * bytesPerElement);
  }
}
