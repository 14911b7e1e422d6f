// Training checkpoints: `checkpoints/step-NNNNNN/` holds the adapter (a loadable PEFT folder), the
// AdamW moments, the best adapter so far when keep_best is on, and trainer_state.json (step, data
// position, RNG, schedule position, early-stopping state, and the sha256 of every other file). A
// folder is written under a temporary name and renamed into place, so one either exists complete or
// not at all; on resume each file's sha256 is checked before anything is trusted.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Gemma4Config } from "@owntune/model";
import { parseConfig, tempPathFor, UserError, withAtomicDir, withSafetensors, writeFileAtomic, writeSafetensors } from "@owntune/core";
import type { DataPosition } from "@owntune/curate";
import { z } from "zod";
import type { AdapterWeights } from "./adapter.js";
import type { AdamW } from "./adamw.js";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, readPeftAdapter, writePeftFiles, type WritePeftOptions } from "./peft.js";

export const CHECKPOINTS_DIR = "checkpoints";
export const CHECKPOINT_FORMAT = "owntune-checkpoint";
/** Bumped whenever a file of a checkpoint changes meaning. */
export const CHECKPOINT_FORMAT_VERSION = 1;
const STATE_FILE = "trainer_state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";
const BEST_FILE = "best_adapter.safetensors";

const stateSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  format_version: z.number().int(),
  /** Optimizer steps completed. */
  step: z.number().int().min(0),
  total_steps: z.number().int().min(0),
  /** The next train row to read. */
  data: z.object({ epoch: z.number().int().min(0), offset: z.number().int().min(0) }),
  /** Dropout masks are drawn from (seed, step, micro-batch, module): the step is the whole RNG state. */
  rng: z.object({ kind: z.literal("counter"), seed: z.number().int().min(0) }),
  /** The schedule is a function of the step; its value here for people reading the file. */
  schedule: z.object({ kind: z.string(), lr: z.number() }),
  optimizer: z.object({ kind: z.literal("adamw"), step: z.number().int().min(0) }),
  best: z.object({ eval_loss: z.number(), step: z.number().int().min(0) }).nullable(),
  evals_without_improvement: z.number().int().min(0),
  tokens_seen: z.number().int().min(0),
  trained_tokens_seen: z.number().int().min(0),
  elapsed_s: z.number().min(0),
  /** sha256 of the result-affecting config and the model/dataset identity. */
  config_digest: z.string(),
  /** sha256 (hex) of each other file of the checkpoint. */
  files: z.record(z.string(), z.string()),
});
export type TrainerState = z.output<typeof stateSchema>;

/** What a checkpoint restores. */
export interface LoadedCheckpoint {
  dir: string;
  state: TrainerState;
  adapter: AdapterWeights;
  /** AdamW moments in the trainer's parameter order. */
  m: Float32Array[];
  v: Float32Array[];
  /** The best adapter so far (keep_best), in PEFT layout. */
  best?: AdapterWeights;
}

/** `step-000050`. */
export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, "0")}`;
}

/** Complete checkpoint folders of a run, newest first. */
export async function listCheckpoints(runDir: string): Promise<Array<{ step: number; dir: string }>> {
  let names: string[];
  try {
    names = await readdir(join(runDir, CHECKPOINTS_DIR));
  } catch {
    return [];
  }
  return names
    .map((n) => ({ m: /^step-(\d{6,})$/.exec(n), n }))
    .filter((e) => e.m)
    .map((e) => ({ step: Number(e.m![1]), dir: join(runDir, CHECKPOINTS_DIR, e.n) }))
    .sort((a, b) => b.step - a.step);
}

export interface SaveCheckpointInput {
  state: Omit<TrainerState, "format" | "format_version" | "files">;
  adapter: AdapterWeights;
  peft: WritePeftOptions;
  /** Names of the parameters in trainer order (`<module>.lora_A` / `.lora_B`) and their shapes. */
  paramNames: readonly string[];
  paramShapes: ReadonlyArray<readonly number[]>;
  optimizer: AdamW;
  best?: AdapterWeights;
}

/** Writes `checkpoints/step-NNNNNN/` atomically, then removes all but the newest `keep`. */
export async function saveCheckpoint(runDir: string, input: SaveCheckpointInput, keep: number): Promise<string> {
  const dir = join(runDir, CHECKPOINTS_DIR, checkpointName(input.state.step));
  await withAtomicDir(dir, async (tmp) => {
    await writePeftFiles(tmp, input.adapter, input.peft);
    const moments = input.paramNames.flatMap((name, i) => [
      { name: `${name}.exp_avg`, dtype: "F32" as const, shape: [...input.paramShapes[i]!] },
      { name: `${name}.exp_avg_sq`, dtype: "F32" as const, shape: [...input.paramShapes[i]!] },
    ]);
    await writeSafetensors(join(tmp, OPTIMIZER_FILE), moments, (_, i) =>
      i % 2 === 0 ? input.optimizer.m[i >> 1]! : input.optimizer.v[i >> 1]!,
    );
    const files = [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, OPTIMIZER_FILE];
    if (input.best) {
      const names = [...input.best.pairs.keys()];
      const tensors = names.flatMap((m) => {
        const p = input.best!.pairs.get(m)!;
        return [
          { name: `${m}.lora_A`, dtype: "F32" as const, shape: [p.rank, p.inFeatures] },
          { name: `${m}.lora_B`, dtype: "F32" as const, shape: [p.outFeatures, p.rank] },
        ];
      });
      await writeSafetensors(join(tmp, BEST_FILE), tensors, (_, i) => {
        const p = input.best!.pairs.get(names[i >> 1]!)!;
        return i % 2 === 0 ? p.a : p.b;
      });
      files.push(BEST_FILE);
    }
    const sums: Record<string, string> = {};
    for (const f of files) sums[f] = await sha256File(join(tmp, f));
    const state: TrainerState = { format: CHECKPOINT_FORMAT, format_version: CHECKPOINT_FORMAT_VERSION, ...input.state, files: sums };
    await writeFileAtomic(join(tmp, STATE_FILE), JSON.stringify(state, null, 2) + "\n");
  });
  await pruneCheckpoints(runDir, keep);
  return dir;
}

/** Removes all but the newest `keep` checkpoints (each renamed away first, so none is ever half there). */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(runDir);
  for (const c of all.slice(keep)) {
    const away = tempPathFor(c.dir) + "-old";
    await rename(c.dir, away);
    await rm(away, { recursive: true, force: true });
  }
}

/**
 * Reads and checks one checkpoint against the model it was trained on. Any problem (a missing file,
 * a sha256 that does not match, another format version) is a UserError naming the file.
 */
export async function loadCheckpoint(dir: string, model: Gemma4Config, paramNames: readonly string[]): Promise<LoadedCheckpoint> {
  const state = await checkCheckpoint(dir);
  const peft = await readPeftAdapter(dir, model);
  const moments = await readTensors(join(dir, OPTIMIZER_FILE));
  const take = (name: string) => {
    const t = moments.get(name);
    if (!t) throw new UserError(`no tensor ${name}`, { file: join(dir, OPTIMIZER_FILE) });
    return t;
  };
  const m = paramNames.map((n) => take(`${n}.exp_avg`));
  const v = paramNames.map((n) => take(`${n}.exp_avg_sq`));
  let best: AdapterWeights | undefined;
  if (state.files[BEST_FILE]) {
    const t = await readTensors(join(dir, BEST_FILE));
    best = { scale: peft.weights.scale, pairs: new Map() };
    for (const [module, p] of peft.weights.pairs) {
      const a = t.get(`${module}.lora_A`);
      const b = t.get(`${module}.lora_B`);
      if (!a || !b) throw new UserError(`no best weights for ${module}`, { file: join(dir, BEST_FILE) });
      best.pairs.set(module, { ...p, a, b });
    }
  }
  return { dir, state, adapter: peft.weights, m, v, best };
}

/**
 * Reads trainer_state.json (format and version checked) and the sha256 of every file it lists; any
 * problem is a UserError naming the file.
 */
export async function checkCheckpoint(dir: string): Promise<TrainerState> {
  const stateFile = join(dir, STATE_FILE);
  let text: string;
  try {
    text = await readFile(stateFile, "utf8");
  } catch {
    throw new UserError(`no ${STATE_FILE}: not a complete checkpoint`, { file: dir });
  }
  const raw = parseConfig(
    z.object({ format: z.string().optional(), format_version: z.unknown().optional() }).passthrough(),
    text,
    stateFile,
  );
  if (raw.format !== CHECKPOINT_FORMAT)
    throw new UserError(`not an owntune checkpoint (format ${JSON.stringify(raw.format)})`, { file: stateFile });
  if (raw.format_version !== CHECKPOINT_FORMAT_VERSION) {
    throw new UserError(`checkpoint format ${String(raw.format_version)}, this owntune reads ${CHECKPOINT_FORMAT_VERSION}`, {
      file: stateFile,
      hint: "resume with the owntune version that wrote it",
    });
  }
  const state = parseConfig(stateSchema, text, stateFile);
  for (const [name, sum] of Object.entries(state.files)) {
    const path = join(dir, name);
    let actual: string;
    try {
      actual = await sha256File(path);
    } catch {
      throw new UserError(`missing (listed in ${STATE_FILE})`, { file: path });
    }
    if (actual !== sum)
      throw new UserError(
        `sha256 ${actual.slice(0, 12)}… does not match ${STATE_FILE} (${sum.slice(0, 12)}…): the file was changed or damaged`,
        { file: path },
      );
  }
  return state;
}

async function readTensors(path: string): Promise<Map<string, Float32Array>> {
  return withSafetensors(path, async (file) => {
    const out = new Map<string, Float32Array>();
    for (const name of file.entries.keys()) out.set(name, await file.read(name));
    return out;
  });
}

/** sha256 (hex) of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
