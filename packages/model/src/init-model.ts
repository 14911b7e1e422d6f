// `owntune init-model`: a complete model directory in Hugging Face layout (Gemma4ForCausalLM) with
// deterministic random weights — config.json, model.safetensors (or shards + index), tokenizer files,
// generation_config.json — written atomically, tensor by tensor. Same seed and config → same bytes.
import { existsSync } from "node:fs";
import { copyFile, statfs } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { defaultTokenizerDir, loadDefaultTokenizer, loadTokenizer, type TokenizerIdentity } from "@owntune/tokenizer";
import {
  DTYPE_BYTES,
  formatBytes,
  MODEL_MARKER_FILE,
  MODEL_MARKER_FORMAT,
  numElements,
  silentProgress,
  UserError,
  withAtomicDir,
  writeFileAtomic,
  writeSafetensors,
  type FloatDtype,
  type Progress,
  type TensorToWrite,
} from "@owntune/core";
import { shardFileName, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./checkpoint.js";
import { configToJson, countParameters, type Gemma4Config } from "./config.js";
import { randomTensorChunks } from "./init-weights.js";
import { checkTokenizerFits } from "./model-dir.js";
import { expectedTensors, TEXT_PREFIX, type TensorSpec } from "./tensors.js";

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
  /** The preset the config came from, recorded in the folder's marker. */
  preset?: string;
}

/** What owntune-init.json records: the folder is an owntune model, and what made it. */
export interface InitModelMarker {
  format: typeof MODEL_MARKER_FORMAT;
  preset: string | null;
  seed: number;
  dtype: "bf16" | "f32";
  /** The tokenizer folder copied in (absolute), or null for the default Gemma 3 tokenizer. */
  tokenizer: string | null;
}

/** Room left on the disk beyond the weights (tokenizer files, filesystem overhead). */
const DISK_MARGIN_BYTES = 256 << 20;

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
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new UserError(`seed must be an integer in [0, 4294967295], got ${seed}`, { field: "seed" });
  if (!(maxShardBytes > 0)) throw new UserError(`maxShardBytes must be positive, got ${maxShardBytes}`, { field: "maxShardBytes" });

  const tokenizerDir = options.tokenizerDir ?? defaultTokenizerDir();
  const tokenizer = options.tokenizerDir === undefined ? await loadDefaultTokenizer() : await loadTokenizer(tokenizerDir);
  checkTokenizerFits(tokenizer, config, tokenizerDir, []);

  const specs = expectedTensors(config).map((spec) => ({ spec, bytes: numElements(spec.shape) * DTYPE_BYTES[dtype] }));
  const weightBytes = specs.reduce((a, s) => a + s.bytes, 0);
  await checkDiskSpace(outDir, weightBytes);
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
    const marker: InitModelMarker = {
      format: MODEL_MARKER_FORMAT,
      preset: options.preset ?? null,
      seed,
      dtype: dtype === "BF16" ? "bf16" : "f32",
      tokenizer: options.tokenizerDir !== undefined ? resolve(options.tokenizerDir) : null,
    };
    await writeJson(MODEL_MARKER_FILE, marker);
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
      await writeSafetensors(
        join(tmp, file),
        tensors,
        (_t, i) => countingChunks(config, shard[i]!.spec, seed, progress, DTYPE_BYTES[dtype]),
        {
          metadata: { format: "pt" },
        },
      );
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

/**
 * Refuses to start writing `weightBytes` (plus a margin) where the disk has less free (a typo'd hidden_size would otherwise
 * fill the disk for hours before failing). Measured on the nearest existing folder of `outDir`.
 */
export async function checkDiskSpace(outDir: string, weightBytes: number): Promise<void> {
  const bytes = weightBytes + DISK_MARGIN_BYTES;
  let dir = resolve(outDir);
  while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
  let free: number;
  try {
    const s = await statfs(dir);
    free = Number(s.bavail) * Number(s.bsize);
  } catch {
    return; // no statfs here: the write itself will say when the disk is full
  }
  if (bytes > free) {
    const gb = (n: number) => formatBytes(n, "GB", n < 1e10 ? 2 : 0);
    throw new UserError(`this model needs ${gb(bytes)} of disk, but only ${gb(free)} are free there`, {
      file: outDir,
      hint: "check the config's sizes (hidden_size, num_hidden_layers, vocab_size…), or write it to a bigger disk",
    });
  }
}

/** A tensor's random values in chunks, reporting each chunk's stored bytes to `progress`. */
function* countingChunks(
  config: Gemma4Config,
  spec: TensorSpec,
  seed: number,
  progress: Progress,
  bytesPerElement: number,
): Generator<Float32Array> {
  for (const chunk of randomTensorChunks(config, spec, seed)) {
    yield chunk;
    progress.increment(chunk.length * bytesPerElement);
  }
}
