// The recipe: one YAML file with a section per stage (model, curate, train, export), validated by a
// strict zod schema built from the registered stages. `--set a.b=v` overrides any field, typed by
// the schema. Every problem is reported at once, each as `file:line: field: message`.
import { readFile } from "node:fs/promises";
import { dirname, isAbsolute, resolve } from "node:path";
import {
  ConfigError,
  didYouMean,
  formatProblems,
  knownKeysAt,
  parseLocated,
  schemaAt,
  schemaDef,
  UserError,
  validateLocated,
  type ConfigProblem,
  type LocatedSource,
} from "@owntune/core";
import { parse as parseYamlValue } from "yaml";
import { z } from "zod";
import { modelSection } from "./recipe-model.js";
import { stages } from "./stages/index.js";

const stageSections = Object.fromEntries(
  stages.map((s) => [
    s.name,
    s.schema
      .extend({ out: z.string().min(1).optional().describe("Output folder (default runs/<recipe name>/<stage>/).") })
      .strict()
      .optional()
      .describe(s.description),
  ]),
);

/** The recipe schema: strict at every level, so a typo'd key is an error. */
export const recipeSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "letters, digits, '.', '_' and '-'")
      .describe("Names the run: outputs default to runs/<name>/<stage>/."),
    description: z.string().optional().describe("What this recipe does, for people reading it."),
    seed: z.number().int().min(0).default(0).describe("Seed for every random choice (stages may override)."),
    model: modelSection,
    ...stageSections,
  })
  .strict();

export type Recipe = z.output<typeof recipeSchema>;

/** A loaded, validated recipe plus where it came from. */
export interface LoadedRecipe {
  recipe: Recipe;
  /** The recipe file as the user named it. */
  file: string;
  /** Its folder, absolute: relative paths in the recipe resolve against it. */
  dir: string;
  /** Where a field of the recipe was given, for errors: the file and line, or `--set`. Absent for recipes built in code. */
  locate?(field: ReadonlyArray<string | number>): { file: string; line?: number; field: string };
}

/** JSON Schema of recipes (input side: fields with defaults are optional), for editor completion. */
export function recipeJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(recipeSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return { ...schema, title: "owntune recipe", $id: "https://owntune.dev/schema/recipe.json" };
}

/** Resolves `p` against the recipe folder unless it is absolute. */
export function resolveRecipePath(recipeDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(recipeDir, p);
}

type AnySchema = z.core.$ZodType;

/** Accepts strings for a string leaf even when YAML would read `--set name=123` as a number. */
function coerceForLeaf(leaf: AnySchema | undefined, value: unknown, raw: string): unknown {
  if (!leaf) return value;
  const d = schemaDef(leaf);
  const acceptsString =
    d.type === "string" ||
    (d.type === "enum" && Object.values(d.entries as object).includes(raw)) ||
    (d.type === "union" && (d.options as AnySchema[]).some((o) => schemaDef(o).type === "string"));
  if (acceptsString && typeof value !== "string" && (typeof value === "number" || typeof value === "boolean" || value === null)) {
    const acceptsValueAsIs = d.type === "union" && (d.options as AnySchema[]).some((o) => schemaDef(o).type === typeof value);
    return acceptsValueAsIs ? value : raw;
  }
  return value;
}

/** One parsed `--set a.b=value`. */
export interface SetOverride {
  path: string[];
  raw: string;
  value: unknown;
}

/**
 * Parses `a.b=value` overrides of fields of `root` (the recipe by default). The value is read as a
 * YAML scalar or flow collection (`3e-4`, `true`, `[q_proj, v_proj]`), then made a string where the
 * schema wants one. Unknown paths are errors with a did-you-mean.
 */
export function parseSets(sets: readonly string[], root: AnySchema = recipeSchema): SetOverride[] {
  return sets.map((s) => {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new UserError(`expected "--set a.b=value", got "${s}"`, { file: "--set" });
    const key = s.slice(0, eq).trim();
    const raw = s.slice(eq + 1);
    const path = key.split(".");
    if (path.some((p) => p === "")) throw new UserError(`"${key}" is not a field path like train.lr`, { file: "--set" });
    let value: unknown;
    try {
      value = raw === "" ? "" : parseYamlValue(raw);
    } catch {
      value = raw;
    }
    const leafPath = path;
    for (let i = 0; i < leafPath.length; i++) {
      const parent = leafPath.slice(0, i);
      const known = knownKeysAt(root, parent);
      if (known.length > 0 && !known.includes(leafPath[i]!)) {
        const hint = didYouMean(leafPath[i]!, known);
        throw new UserError(`unknown field${hint ? ` (did you mean "${[...parent, hint].join(".")}"?)` : ""}`, {
          file: "--set",
          field: key,
        });
      }
    }
    return { path, raw, value: coerceForLeaf(schemaAt(root, path), value, raw) };
  });
}

function applyOverride(root: Record<string, unknown>, o: SetOverride): void {
  let cur: Record<string, unknown> = root;
  for (const key of o.path.slice(0, -1)) {
    const next = cur[key];
    if (next === undefined || next === null || typeof next !== "object") cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[o.path[o.path.length - 1]!] = o.value;
}

/**
 * Validates recipe text with overrides applied. Problems in the file carry its line; problems in an
 * overridden field are reported against `--set field`.
 */
export function parseRecipe(text: string, file: string, sets: readonly string[] = []): Recipe {
  return parseLocatedWithOverrides(recipeSchema, text, file, sets).value;
}

/** Validates YAML/JSON `text` against `schema` with `--set` overrides applied (see parseRecipe). */
export function parseWithOverrides<S extends z.ZodType>(schema: S, text: string, file: string, sets: readonly string[] = []): z.output<S> {
  return parseLocatedWithOverrides(schema, text, file, sets).value;
}

/** A validated value and where each of its fields came from (a line of the file, or --set). */
function parseLocatedWithOverrides<S extends z.ZodType>(
  schema: S,
  text: string,
  file: string,
  sets: readonly string[],
): { value: z.output<S>; locate: LoadedRecipe["locate"] } {
  const source = parseLocated(text, file);
  const overrides = parseSets(sets, schema);
  const overridden = new Set(overrides.map((o) => o.path.join(".")));
  const locate = (field: ReadonlyArray<string | number>) => {
    const name = field.map(String).join(".");
    const bySet = [...overridden].find((o) => name === o || name.startsWith(o + "."));
    return bySet !== undefined ? { file: "--set", field: name } : { file, line: source.lineOf(field), field: name };
  };
  if (overrides.length === 0) return { value: validateLocated(schema, source, file), locate };
  const root = (source.value && typeof source.value === "object" ? source.value : {}) as Record<string, unknown>;
  for (const o of overrides) applyOverride(root, o);
  const located: LocatedSource = { ...source, value: root };
  try {
    return { value: validateLocated(schema, located, file), locate };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    // Name `--set` as the source of problems in fields the user overrode.
    const fromFile = e.problems.filter((p: ConfigProblem) => !overridden.has(p.field));
    const fromSets = e.problems.filter((p: ConfigProblem) => overridden.has(p.field));
    const lines = [
      ...(fromFile.length > 0 ? [formatProblems(file, fromFile)] : []),
      ...fromSets.map((p) => `--set ${p.field}: ${p.message}`),
    ];
    throw new UserError(lines.join("\n"));
  }
}

/** Reads and validates a recipe file. */
export async function loadRecipe(file: string, sets: readonly string[] = []): Promise<LoadedRecipe> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(code === "ENOENT" ? "no such file" : `cannot read recipe (${code})`, { file });
  }
  const { value: recipe, locate } = parseLocatedWithOverrides(recipeSchema, text, file, sets);
  return { recipe, file, dir: dirname(resolve(file)), locate };
}
