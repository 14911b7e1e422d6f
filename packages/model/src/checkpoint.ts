// A model directory's weights as a TensorSource: one `model.safetensors`, or shards listed in
// `model.safetensors.index.json`; text-only (`model.`) or multimodal (`model.language_model.`, whose
// vision/audio towers are skipped). Checked against the config's tensor list. Reference: spec/gemma4.md §4,
// the HF sharded-checkpoint layout (transformers `modeling_utils`, `load_sharded_checkpoint`).
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import {
  FLOAT_DTYPES,
  parseLocated,
  SafetensorsFile,
  UserError,
  type FloatDtype,
  type SafetensorsDtype,
  type SafetensorsEntry,
} from "@owntune/core";
import type { Gemma4Config } from "./config.js";
import type { TensorFileRows } from "./host-tables.js";
import { MULTIMODAL_TEXT_PREFIX, TEXT_PREFIX, type TensorSource } from "./tensors.js";
import { formatShape, shapeProblems, singleCause } from "./weights-mismatch.js";

export const SINGLE_WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";
/** Problems listed one per line before the rest are summarised, so a wrong config gives a readable message. */
const MAX_LISTED_PROBLEMS = 12;

/**
 * Where text weights may live, tried in order by looking for `<prefix>embed_tokens.weight`:
 * Gemma4ForConditionalGeneration, Gemma 3-style multimodal, Gemma4ForCausalLM, bare names.
 */
const TEXT_PREFIXES = [MULTIMODAL_TEXT_PREFIX, "language_model.model.", TEXT_PREFIX, ""] as const;
const MULTIMODAL_PREFIXES: readonly string[] = [MULTIMODAL_TEXT_PREFIX, "language_model.model."];

/** Standard HF shard file name: `model-00001-of-00003.safetensors`. */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

/** One text tensor of a checkpoint. */
export interface CheckpointTensor {
  /** HF name without the model prefix (`layers.0.mlp.up_proj.weight`). */
  name: string;
  /** Name as stored in the file. */
  storedName: string;
  /** Path of the safetensors file that holds it. */
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: number;
}

/** An open checkpoint: text tensors by unprefixed HF name, read on demand. Call `close()` when done. */
export class Checkpoint implements TensorSource {
  readonly dir: string;
  /** The safetensors files, in index order (one for a single-file checkpoint). */
  readonly files: readonly string[];
  /** The text-model prefix found (`model.language_model.`, `model.`, …). */
  readonly prefix: string;
  /** True when the text model sits inside a multimodal checkpoint. */
  readonly multimodal: boolean;
  /** Text tensors (including unused ones such as a tied `lm_head.weight`), in file order. */
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  /** Stored names outside the text model that were skipped (vision/audio towers, multimodal embedders). */
  readonly skipped: readonly string[];
  /** Stored names outside the text prefix in a text-only checkpoint (reported as extra by `checkAgainst`). */
  readonly foreign: readonly string[];
  private readonly shards: Map<string, SafetensorsFile>;

  constructor(init: {
    dir: string;
    shards: Map<string, SafetensorsFile>;
    prefix: string;
    tensors: Map<string, CheckpointTensor>;
    skipped: string[];
    foreign: string[];
  }) {
    this.dir = init.dir;
    this.shards = init.shards;
    this.files = [...init.shards.keys()];
    this.prefix = init.prefix;
    this.multimodal = MULTIMODAL_PREFIXES.includes(init.prefix);
    this.tensors = init.tensors;
    this.skipped = init.skipped;
    this.foreign = init.foreign;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  tensor(name: string): CheckpointTensor {
    const t = this.tensors.get(name);
    if (!t) throw new RangeError(`${this.dir}: no text tensor ${name} in this checkpoint`);
    return t;
  }

  shape(name: string): number[] {
    return this.tensor(name).shape;
  }

  dtype(name: string): SafetensorsDtype {
    return this.tensor(name).dtype;
  }

  /** Decodes one tensor to float32 (bf16/f16 widened exactly). */
  read(name: string): Promise<Float32Array> {
    const t = this.tensor(name);
    return this.shards.get(t.file)!.read(t.storedName);
  }

  /** Rows `start … start+count−1` along the first axis, as float32 (for gathers from big tables). */
  readRows(name: string, start: number, count: number): Promise<Float32Array> {
    const t = this.tensor(name);
    return this.shards.get(t.file)!.readRows(t.storedName, start, count);
  }

  /**
   * Where a 2-D tensor's rows lie on disk, so a table can be gathered from the file by positioned
   * reads instead of held in memory (per-layer embeddings). The path stays valid after `close()`.
   */
  fileRows(name: string): TensorFileRows | undefined {
    const t = this.tensor(name);
    if (t.shape.length !== 2 || !(FLOAT_DTYPES as readonly string[]).includes(t.dtype)) return undefined;
    const e = this.shards.get(t.file)!.entry(t.storedName);
    return { path: t.file, offset: e.begin, rows: t.shape[0]!, width: t.shape[1]!, dtype: t.dtype as FloatDtype };
  }

  /** The stored bytes of one tensor, undecoded (for lossless copies). */
  readRaw(name: string): Promise<Uint8Array> {
    const t = this.tensor(name);
    return this.shards.get(t.file)!.readRaw(t.storedName);
  }

  /** Total bytes of the text tensors as stored. */
  get textBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.bytes;
    return n;
  }

  /**
   * Checks the text tensors against `config`: every expected tensor present with its shape, nothing
   * else but ignorable extras. Throws one UserError listing every problem, one per line; when one
   * config field explains them all (a wrong head_dim), one line naming that field at its line in
   * `configFile`, counting the tensors it misshapes.
   */
  checkAgainst(config: Gemma4Config, configFile?: string): void {
    const problems = shapeProblems(this.tensors, config);
    if (problems.length === 0 && this.foreign.length === 0) return;
    const foreign = this.foreign.map(
      (name) => `${this.fileOfStored(name)}: tensor ${name} is outside the text model (${this.prefix || "no prefix"})`,
    );
    const cause = this.foreign.length === 0 ? singleCause(this.tensors, config, problems) : undefined;
    if (cause) {
      const first = cause.problems[0]!;
      const example =
        first.kind === "shape"
          ? `${this.prefix}${first.name} has ${formatShape(first.got!)}, config wants ${formatShape(first.want!)}`
          : `${this.prefix}${first.name} is ${first.kind}`;
      throw new UserError(
        `${String(config[cause.field])} does not fit these weights, which were made with ${cause.field} ${cause.value} ` +
          `(${cause.problems.length} tensors differ from what this config wants, e.g. ${example})`,
        {
          file: configFile ?? join(this.dir, "config.json"),
          line: configFile ? lineOfField(configFile, cause.field) : undefined,
          field: cause.field,
          hint: `set ${cause.field} to ${cause.value}, or use the config.json that came with these weights`,
        },
      );
    }
    const where = this.files.length === 1 ? this.files[0]! : join(this.dir, WEIGHTS_INDEX_FILE);
    const lines = problems.map((p) => {
      const t = this.tensors.get(p.name);
      if (p.kind === "missing") return `${where}: tensor ${this.prefix}${p.name} is missing; config wants shape ${formatShape(p.want!)}`;
      if (p.kind === "shape")
        return `${t!.file}: tensor ${t!.storedName} has shape ${formatShape(p.got!)}, config wants ${formatShape(p.want!)}`;
      return `${t!.file}: tensor ${t!.storedName} with shape ${formatShape(p.got!)} is not part of a model with this config`;
    });
    lines.push(...foreign);
    const shown = lines.slice(0, MAX_LISTED_PROBLEMS);
    if (lines.length > shown.length) shown.push(`… and ${lines.length - shown.length} more problems with these weights`);
    throw new UserError(shown.join("\n"), { hint: "does config.json belong to these weights?" });
  }

  private fileOfStored(storedName: string): string {
    for (const [path, f] of this.shards) if (f.has(storedName)) return path;
    return this.dir;
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((f) => f.close()));
  }
}

/** The line of a config field in config.json (or its multimodal text_config), when the file reads. */
function lineOfField(configFile: string, field: string): number | undefined {
  try {
    const source = parseLocated(readFileSync(configFile, "utf8"), configFile);
    const top = source.value as Record<string, unknown> | null;
    return source.lineOf(top && field in top ? [field] : ["text_config", field]);
  } catch {
    return undefined;
  }
}

/** The safetensors files of `dir` and, for sharded checkpoints, which stored tensor lives in which. */
async function openShards(dir: string): Promise<{ shards: Map<string, SafetensorsFile>; owner: Map<string, string> }> {
  const single = join(dir, SINGLE_WEIGHTS_FILE);
  const indexPath = join(dir, WEIGHTS_INDEX_FILE);
  const shards = new Map<string, SafetensorsFile>();
  const owner = new Map<string, string>();
  const closeAll = () => Promise.all([...shards.values()].map((f) => f.close()));
  try {
    if (existsSync(single)) {
      const f = await SafetensorsFile.open(single);
      shards.set(single, f);
      for (const name of f.names()) owner.set(name, single);
      return { shards, owner };
    }
    if (!existsSync(indexPath)) {
      throw new UserError(`no ${SINGLE_WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}`, {
        file: dir,
        hint: "expected a model directory in Hugging Face layout (try `owntune init-model`)",
      });
    }
    const weightMap = await readWeightMap(indexPath);
    const listed = new Map<string, string[]>(); // shard file → tensors the index puts there
    for (const [tensor, shard] of weightMap) {
      const l = listed.get(shard);
      if (l) l.push(tensor);
      else listed.set(shard, [tensor]);
    }
    for (const [shard, tensors] of listed) {
      const path = join(dir, shard);
      if (!existsSync(path)) {
        throw new UserError(`shard ${shard} (listed for ${tensors.length} tensors, e.g. ${tensors[0]}) does not exist`, {
          file: indexPath,
        });
      }
      shards.set(path, await SafetensorsFile.open(path));
    }
    for (const [tensor, shard] of weightMap) {
      const path = join(dir, shard);
      if (!shards.get(path)!.has(tensor))
        throw new UserError(`tensor ${tensor} is listed in ${shard}, which does not hold it`, { file: indexPath });
      owner.set(tensor, path);
    }
    for (const [path, f] of shards) {
      for (const name of f.names()) {
        const listedIn = owner.get(name);
        if (listedIn === undefined) {
          throw new UserError(`tensor ${name} is not listed in ${WEIGHTS_INDEX_FILE}`, {
            file: path,
            hint: "the index and the shards disagree",
          });
        }
        if (listedIn !== path) {
          throw new UserError(`tensor ${name} is in both ${basename(listedIn)} and ${basename(path)}`, {
            file: indexPath,
            hint: "each tensor must be in exactly one shard",
          });
        }
      }
    }
    return { shards, owner };
  } catch (e) {
    await closeAll();
    throw e;
  }
}

/** Reads and checks `model.safetensors.index.json`'s `weight_map` (tensor → shard file name). */
async function readWeightMap(indexPath: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, "utf8"));
  } catch (e) {
    throw new UserError(e instanceof SyntaxError ? "not valid JSON" : `cannot read (${(e as NodeJS.ErrnoException).code})`, {
      file: indexPath,
    });
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (map === null || typeof map !== "object" || Array.isArray(map)) {
    throw new UserError("weight_map must map tensor names to shard files", { file: indexPath, field: "weight_map" });
  }
  const out = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    // Shard names come from a file we did not write: only plain names inside the model directory.
    if (typeof shard !== "string" || !/^[^/\\]+\.safetensors$/.test(shard) || shard.startsWith(".")) {
      throw new UserError(`expected a .safetensors file name in the model directory, got ${JSON.stringify(shard)}`, {
        file: indexPath,
        field: `weight_map.${tensor}`,
      });
    }
    out.set(tensor, shard);
  }
  if (out.size === 0) throw new UserError("weight_map lists no tensors", { file: indexPath, field: "weight_map" });
  return out;
}

/** Which prefix holds the text model: the first whose `embed_tokens.weight` exists. */
function detectPrefix(names: ReadonlySet<string>, where: string): string {
  for (const p of TEXT_PREFIXES) if (names.has(`${p}embed_tokens.weight`)) return p;
  throw new UserError(
    `no text-model embedding found (looked for ${TEXT_PREFIXES.filter((p) => p !== "")
      .map((p) => `${p}embed_tokens.weight`)
      .join(", ")})`,
    { file: where, hint: "is this a Gemma 4 checkpoint?" },
  );
}

/**
 * Opens the weights of the model directory `dir`. With `config`, checks every text tensor against
 * it (missing, extra or mis-shaped tensors are one UserError naming each tensor and both shapes).
 * Text tensors must be F32, F16 or BF16.
 */
export async function openCheckpoint(dir: string, options: { config?: Gemma4Config; configFile?: string } = {}): Promise<Checkpoint> {
  const { shards, owner } = await openShards(dir);
  try {
    const where = shards.size === 1 ? [...shards.keys()][0]! : join(dir, WEIGHTS_INDEX_FILE);
    const prefix = detectPrefix(new Set(owner.keys()), where);
    const multimodal = MULTIMODAL_PREFIXES.includes(prefix);
    const tensors = new Map<string, CheckpointTensor>();
    const skipped: string[] = [];
    const foreign: string[] = [];
    for (const [path, f] of shards) {
      for (const e of f.entries.values()) {
        const name = textName(e.name, prefix);
        if (name === undefined) {
          (multimodal ? skipped : foreign).push(e.name);
          continue;
        }
        checkFloat(e, path);
        tensors.set(name, { name, storedName: e.name, file: path, dtype: e.dtype, shape: e.shape, bytes: e.end - e.begin });
      }
    }
    const cp = new Checkpoint({ dir, shards, prefix, tensors, skipped, foreign });
    if (options.config) cp.checkAgainst(options.config, options.configFile);
    return cp;
  } catch (e) {
    await Promise.all([...shards.values()].map((f) => f.close()));
    throw e;
  }
}

/** The unprefixed text name of a stored tensor, or undefined when it is not part of the text model. */
function textName(stored: string, prefix: string): string | undefined {
  if (stored === "lm_head.weight" || stored === "language_model.lm_head.weight") return "lm_head.weight";
  if (stored.startsWith(prefix)) return stored.slice(prefix.length);
  return undefined;
}

function checkFloat(e: SafetensorsEntry, file: string): void {
  if (!(FLOAT_DTYPES as readonly string[]).includes(e.dtype)) {
    throw new UserError(`tensor ${e.name} has dtype ${e.dtype}; owntune reads ${FLOAT_DTYPES.join(", ")} weights`, {
      file,
      hint: "quantized checkpoints are not supported as a base model; use the bf16 release",
    });
  }
}
