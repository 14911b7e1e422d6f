// The one rule for every command that writes a folder: it writes into a new or empty folder, or
// replaces an owntune output of the same kind when the user says --force. An existing file, a folder
// holding anything else, or an owntune output of another kind is never deleted or overwritten.
import { promises as fsp } from "node:fs";
import { dirname, join } from "node:path";
import { FILE_NOT_REPLACED, isTempName, removeStaleTemps } from "./atomic-write.js";
import { UserError } from "./errors.js";

/** What a command writes: a curated dataset, an export folder, a model folder, a training run. */
export type OutputKind = "dataset" | "export" | "model" | "run";

/** Marker file of a model folder written by `owntune init-model` (and a recipe's `model.init`). */
export const MODEL_MARKER_FILE = "owntune-init.json";
export const MODEL_MARKER_FORMAT = "owntune-model";
/** `format` of a training run's run.json. */
export const RUN_FORMAT = "owntune-run";

interface KindRule {
  /** How a message names it: "a curated dataset". */
  noun: string;
  /** True when the folder's marker says it is this kind of owntune output. */
  marked(dir: string, names: readonly string[]): Promise<boolean>;
  /** Names an output of this kind holds; anything else in the folder is the user's, so it is not ours to replace. */
  owns: RegExp;
}

async function jsonField(path: string, field: string): Promise<unknown> {
  try {
    const v = JSON.parse(await fsp.readFile(path, "utf8")) as Record<string, unknown> | null;
    return v && typeof v === "object" ? v[field] : undefined;
  } catch {
    return undefined;
  }
}

const KINDS: Record<OutputKind, KindRule> = {
  dataset: {
    noun: "a curated dataset",
    marked: async (dir, names) =>
      names.includes("manifest.json") && (await jsonField(join(dir, "manifest.json"), "format")) === "owntune-dataset",
    owns: /^(manifest\.json|report\.html|[\w.-]+\.arrow)$/,
  },
  export: {
    noun: "an export folder",
    // What `owntune export` always writes: the model GGUF and the Modelfile beside it.
    marked: async (_dir, names) => names.includes("Modelfile") && names.some((n) => /^model-[\w]+\.gguf$/.test(n)),
    owns: /^(model-[\w]+\.gguf|base-[\w]+\.gguf|adapter\.gguf|Modelfile|verify\.json|verify-adapter\.json|merged)$/,
  },
  model: {
    noun: "a model made by owntune init-model",
    marked: async (dir, names) => {
      if (!names.includes(MODEL_MARKER_FILE)) return false;
      const format = await jsonField(join(dir, MODEL_MARKER_FILE), "format");
      // Markers written before `format` existed hold the preset and seed only.
      return (
        format === MODEL_MARKER_FORMAT || (format === undefined && (await jsonField(join(dir, MODEL_MARKER_FILE), "preset")) !== undefined)
      );
    },
    owns: /^(owntune-init\.json|config\.json|generation_config\.json|model(-\d{5}-of-\d{5})?\.safetensors|model\.safetensors\.index\.json|tokenizer\.json|tokenizer_config\.json|chat_template\.jinja|special_tokens_map\.json)$/,
  },
  run: {
    noun: "a training run",
    marked: async (dir, names) => names.includes("run.json") && (await jsonField(join(dir, "run.json"), "format")) === RUN_FORMAT,
    owns: /^(run\.json|metrics\.jsonl|samples\.jsonl|checkpoints|adapter|report\.html|\.owntune-train\.lock)$/,
  },
};

/**
 * Removes what writers killed mid-write left in `dir` (removeStaleTemps) and says so through `log`.
 * For commands that write single files into a folder (verify.json beside a GGUF).
 */
export async function clearStaleTemps(dir: string, log?: (line: string) => void): Promise<string[]> {
  const removed = await removeStaleTemps(dir);
  announceRemoved(removed, log);
  return removed;
}

function announceRemoved(names: readonly string[], log: ((line: string) => void) | undefined): void {
  if (names.length === 0) return;
  log?.(
    `removed ${names.length} stale temporary file(s) left by an interrupted run (${names.slice(0, 3).join(", ")}${names.length > 3 ? ", …" : ""})`,
  );
}

/** Which kind of owntune output `dir` holds (its marker), or undefined. */
export async function outputKindOf(dir: string): Promise<OutputKind | undefined> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return undefined;
  }
  for (const kind of Object.keys(KINDS) as OutputKind[]) if (await KINDS[kind].marked(dir, names)) return kind;
  return undefined;
}

export interface ClaimOptions {
  /** Replace an owntune output of the same kind (never anything else). */
  force?: boolean;
  /** How the user named the folder in errors: the flag (`--out`) or recipe field. */
  field?: string;
  /** Where to announce stale temporaries removed. */
  log?: (line: string) => void;
}

export interface Claim {
  /** True when an owntune output of the same kind is there and will be replaced when the new one is complete. */
  replaces: boolean;
  /** Stale temporaries of interrupted runs that were removed (beside the folder and inside it). */
  removedTemps: string[];
}

/**
 * Checks that a command may write the folder `path` as an output of `kind`, before any work starts:
 * nothing there, an empty folder, or (with `force`) an owntune output of the same kind. Otherwise a
 * UserError naming it. Also removes the temporaries that killed runs left beside it (and inside an
 * output of ours), and says so.
 */
export async function claimOutputDir(path: string, kind: OutputKind, options: ClaimOptions = {}): Promise<Claim> {
  const where = { file: path, field: options.field };
  const removedTemps = await removeStaleTemps(dirname(path));
  const announce = () => announceRemoved(removedTemps, options.log);
  let stat;
  try {
    stat = await fsp.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    announce();
    return { replaces: false, removedTemps };
  }
  const rule = KINDS[kind];
  if (stat.isSymbolicLink()) {
    throw new UserError("is a symbolic link; owntune writes its output as a new folder and will not replace a link", {
      ...where,
      hint: "name the folder itself, or another one",
    });
  }
  if (!stat.isDirectory()) {
    throw new UserError(FILE_NOT_REPLACED, { ...where, hint: "choose another output folder, or move the file away" });
  }
  const names = await fsp.readdir(path);
  if (names.length === 0) {
    announce();
    return { replaces: false, removedTemps };
  }
  const found = await outputKindOf(path);
  if (found === undefined) {
    const shown = names.slice(0, 3).join(", ") + (names.length > 3 ? `, … (${names.length} entries)` : "");
    throw new UserError(`is a folder that already holds other files (${shown}); owntune writes only into a new or empty folder`, {
      ...where,
      hint: "choose another output folder",
    });
  }
  if (found !== kind) {
    throw new UserError(`holds ${KINDS[found].noun}, not ${rule.noun}; owntune will not replace one kind of output with another`, {
      ...where,
      hint: "choose another output folder",
    });
  }
  const foreign = names.filter((n) => !rule.owns.test(n) && !isTempName(n));
  if (foreign.length > 0) {
    throw new UserError(
      `holds ${rule.noun}, but also files owntune did not write (${foreign.slice(0, 3).join(", ")}${foreign.length > 3 ? ", …" : ""}); replacing it would delete them`,
      {
        ...where,
        hint: "move those files out, or choose another output folder",
      },
    );
  }
  if (!options.force) {
    throw new UserError(`already holds ${rule.noun} from an earlier run`, {
      ...where,
      hint: "pass --force to replace it (the old one stays until the new one is complete)",
    });
  }
  removedTemps.push(...(await removeStaleTemps(path)));
  announce();
  return { replaces: true, removedTemps };
}
