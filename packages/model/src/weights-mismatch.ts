// Weights that do not fit their config.json: the list of tensor problems, and when one config field's
// value explains all of them (a wrong head_dim misshapes a dozen tensors), that field as the one cause.
import type { Gemma4Config } from "./config.js";
import { expectedTensors, ignorableTensor } from "./tensors.js";

/** A stored tensor as the check sees it: unprefixed HF name and shape. */
export interface StoredShape {
  name: string;
  shape: readonly number[];
}

/** One tensor that does not fit: missing, misshapen, or not part of a model with this config. */
export interface ShapeProblem {
  name: string;
  kind: "missing" | "shape" | "extra";
  /** What the file holds (absent when missing). */
  got?: readonly number[];
  /** What the config wants (absent when extra). */
  want?: readonly number[];
}

/** Every tensor of `stored` that does not fit `config`, in the config's order, then the extras. */
export function shapeProblems(stored: ReadonlyMap<string, StoredShape>, config: Gemma4Config): ShapeProblem[] {
  const problems: ShapeProblem[] = [];
  const expected = expectedTensors(config);
  const wanted = new Set(expected.map((t) => t.name));
  for (const spec of expected) {
    const t = stored.get(spec.name);
    if (!t) problems.push({ name: spec.name, kind: "missing", want: spec.shape });
    else if (!sameShape(t.shape, spec.shape)) problems.push({ name: spec.name, kind: "shape", got: t.shape, want: spec.shape });
  }
  for (const t of stored.values()) {
    if (!wanted.has(t.name) && !ignorableTensor(config, t.name)) problems.push({ name: t.name, kind: "extra", got: t.shape });
  }
  return problems;
}

/** Shape fields of config.json, tried in this order as the single cause of a mismatch. */
const SHAPE_FIELDS = [
  "head_dim",
  "global_head_dim",
  "hidden_size",
  "intermediate_size",
  "num_attention_heads",
  "num_key_value_heads",
  "num_global_key_value_heads",
  "hidden_size_per_layer_input",
  "vocab_size",
  "vocab_size_per_layer_input",
  "num_kv_shared_layers",
] as const;
type ShapeField = (typeof SHAPE_FIELDS)[number];

/** The one config field whose other value makes every tensor fit, with the value the weights were made with. */
export interface MismatchCause {
  field: ShapeField;
  value: number;
  /** The tensors it misshapes (all the problems). */
  problems: ShapeProblem[];
}

/**
 * Looks for one field of `config` whose other value would make every stored tensor fit: candidates are
 * the dimensions the misfitting tensors have, and those divided by a head count or by 2. Undefined when
 * no single field explains everything (then each problem is its own).
 */
export function singleCause(
  stored: ReadonlyMap<string, StoredShape>,
  config: Gemma4Config,
  problems: readonly ShapeProblem[],
): MismatchCause | undefined {
  if (problems.length < 2) return undefined;
  const dims = new Set<number>();
  for (const p of problems) for (const d of p.got ?? []) dims.add(d);
  const divisors = [
    1,
    2,
    config.num_attention_heads,
    config.num_key_value_heads,
    config.num_global_key_value_heads ?? 1,
    config.num_hidden_layers,
  ];
  const candidates = new Set<number>();
  for (const d of dims) for (const k of divisors) if (d % k === 0) candidates.add(d / k);
  for (let s = 0; s < config.num_hidden_layers; s++) candidates.add(s); // num_kv_shared_layers
  for (const field of SHAPE_FIELDS) {
    for (const value of candidates) {
      if (value === config[field] || (value === 0 && field !== "num_kv_shared_layers" && field !== "hidden_size_per_layer_input")) continue;
      const changed = { ...config, [field]: value } as Gemma4Config;
      if (field === "vocab_size" && config.vocab_size_per_layer_input === config.vocab_size) changed.vocab_size_per_layer_input = value;
      let fits: boolean;
      try {
        fits = shapeProblems(stored, changed).length === 0;
      } catch {
        fits = false; // a value the model cannot be built with
      }
      if (fits) return { field, value, problems: [...problems] };
    }
  }
  return undefined;
}

/** `[128, 64]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
