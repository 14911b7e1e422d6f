// Turns zod validation issues into located, human messages:
// `recipes/quickstart.yaml:14: train.lr: expected a positive number, got "3e-4x"`.
// Line numbers come from the YAML/JSON source through the `yaml` package's node ranges.
import { isMap, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import { z } from "zod";
import { UserError } from "./errors.js";

/** One validation problem, located. */
export interface ConfigProblem {
  line?: number;
  field: string;
  message: string;
}

/** A parsed YAML (or JSON) document that can say on which line a field path sits. */
export interface LocatedSource {
  value: unknown;
  lineOf(path: readonly PropertyKey[]): number | undefined;
  /** Line of the key itself (for unknown-key errors), falling back to the value's line. */
  keyLineOf(path: readonly PropertyKey[], key: string): number | undefined;
}

/** Config files (recipes, config.json, adapter_config.json) are a few kB; past this, a file is not one (and the YAML parser's cost grows with it). */
export const MAX_CONFIG_BYTES = 4 << 20;
/** Nested [ and { at most this deep: real configs nest a few levels, and the YAML parser can exhaust memory on thousands. */
export const MAX_FLOW_NESTING = 64;
/** YAML aliases expanded at most this many times: a few anchors can otherwise expand to gigabytes (a "billion laughs"). */
export const MAX_YAML_ALIAS_COUNT = 100;

/**
 * Parses YAML (a superset of JSON) keeping positions; a syntax error is a UserError with its line.
 * A `.json` file must be JSON, and its errors say so.
 */
export function parseLocated(text: string, file: string): LocatedSource {
  if (text.length > MAX_CONFIG_BYTES)
    throw new UserError(`${text.length} characters, more than the ${MAX_CONFIG_BYTES} a config file may have`, {
      file,
      hint: "is this the right file?",
    });
  const deep = tooDeep(text);
  if (deep !== undefined)
    throw new UserError(`brackets nested more than ${MAX_FLOW_NESTING} levels deep`, {
      file,
      line: text.slice(0, deep).split("\n").length,
    });
  const json = /\.json$/i.test(file);
  if (json) checkJson(text, file);
  const language = json ? "JSON" : "YAML";
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  } catch (e) {
    throw new UserError(`cannot parse (${(e as Error).message})`, { file });
  }
  const first = doc.errors[0];
  if (first) {
    // An unclosed [ or { is noticed lines later; name the line it opens on.
    const opened = /^Flow (sequence|map)/.test(first.message) ? unclosedBracketAt(text, first.pos[0]) : undefined;
    const line = lineCounter.linePos(opened ?? first.pos[0]).line;
    const what =
      opened !== undefined
        ? `unclosed ${text[opened]} (a flow ${text[opened] === "[" ? "sequence must end with ]" : "mapping must end with }"})`
        : first.message.split("\n")[0];
    throw new UserError(`invalid ${language}: ${what}`, { file, line });
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (e) {
    const message = (e as Error).message;
    if (/alias count/i.test(message))
      throw new UserError(`YAML aliases expand to too much data (more than ${MAX_YAML_ALIAS_COUNT} expansions)`, {
        file,
        hint: "write the values out instead of nesting anchors",
      });
    throw new UserError(`invalid ${language}: ${message.split("\n")[0]}`, { file });
  }
  const nodeAt = (path: readonly PropertyKey[]) => {
    // Walk down as far as the document goes: a missing field is reported at its nearest parent.
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n) as unknown[], true);
      if (node && typeof node === "object" && "range" in node && Array.isArray(node.range)) return node;
    }
    return undefined;
  };
  const lineOf = (path: readonly PropertyKey[]) => {
    const node = nodeAt(path) as { range?: [number, number, number] } | undefined;
    return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  };
  return {
    value,
    lineOf,
    keyLineOf(path, key) {
      const parent = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
      if (isMap(parent)) {
        for (const pair of parent.items) {
          const k = pair.key as { value?: unknown; range?: [number, number, number] } | null;
          if (k && k.value === key && k.range) return lineCounter.linePos(k.range[0]).line;
        }
      }
      if (isSeq(parent) && parent.range) return lineCounter.linePos(parent.range[0]).line;
      return lineOf(path);
    },
  };
}

/** A `.json` file that is not JSON: UserError at the line of the first error. */
function checkJson(text: string, file: string): void {
  try {
    JSON.parse(text);
  } catch (e) {
    const message = (e as Error).message;
    const at = /at position (\d+)/.exec(message);
    let offset = at ? Number(at[1]) : undefined;
    if (offset === undefined) {
      const yamlError = parseDocument(text, { prettyErrors: false }).errors[0];
      offset = yamlError ? yamlError.pos[0] : text.trimEnd().length;
    }
    const line = text.slice(0, offset).split("\n").length;
    // V8 quotes the whole input after the reason: keep the reason only.
    const reason = message
      .replace(/, (\.\.\.)?".*" is not valid JSON$/s, "")
      .replace(/ in JSON at position \d+.*$/s, "")
      .replace(/ at position \d+.*$/s, "");
    throw new UserError(`not valid JSON (${reason})`, { file, line });
  }
}

/** Offset of the innermost `[` or `{` still open at `end` (quotes and comments skipped), or undefined. */
function unclosedBracketAt(text: string, end: number): number | undefined {
  return scanBrackets(text, end).open.at(-1);
}

/** Offset of the first bracket nested deeper than MAX_FLOW_NESTING, or undefined. */
function tooDeep(text: string): number | undefined {
  return scanBrackets(text, text.length).tooDeepAt;
}

function scanBrackets(text: string, end: number): { open: number[]; tooDeepAt?: number } {
  const open: number[] = [];
  let quote: string | undefined;
  let before = "\n"; // the last character that is not a space or tab: a quote opens a scalar only after one of :[{,- or a line start
  for (let i = 0; i < Math.min(end, text.length); i++) {
    const c = text[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
      else if (c === "\n" && quote === "'") quote = undefined;
      before = c;
      continue;
    }
    if ((c === '"' || c === "'") && ":[{,-\n".includes(before)) quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i + 1 < end && text[i + 1] !== "\n") i++;
    } else if (c === "[" || c === "{") {
      open.push(i);
      if (open.length > MAX_FLOW_NESTING) return { open, tooDeepAt: i };
    } else if (c === "]" || c === "}") open.pop();
    if (c !== " " && c !== "\t") before = c;
  }
  return { open };
}

function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "a list";
  return "a mapping";
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key as string];
  }
  return cur;
}

/** Edit distance, for did-you-mean suggestions on unknown keys. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** The closest known key within a small distance, if any. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

type AnySchema = z.core.$ZodType;

/** A zod schema's definition object (`type`, `shape`, `innerType`, …). */
export function schemaDef(s: AnySchema): Record<string, unknown> {
  return (s as unknown as { _zod: { def: Record<string, unknown> } })._zod.def;
}

/** Strips optional/default/nullable/pipe/lazy wrappers down to the schema that does the work. */
export function unwrapSchema(s: AnySchema): AnySchema {
  let x = s;
  for (let i = 0; i < 16; i++) {
    const def = schemaDef(x);
    if (def.innerType) x = def.innerType as AnySchema;
    else if (def.type === "pipe" && def.in) x = def.in as AnySchema;
    else if (typeof def.getter === "function") x = (def.getter as () => AnySchema)();
    else break;
  }
  return x;
}

/** The (unwrapped) schema of the field at `path`, or undefined where the schema has no such field. */
export function schemaAt(root: AnySchema, path: readonly PropertyKey[]): AnySchema | undefined {
  let cur: AnySchema | undefined = root;
  for (const key of path) {
    if (!cur) return undefined;
    const def = schemaDef(unwrapSchema(cur));
    if (def.type === "object") cur = (def.shape as Record<string, AnySchema>)[key as string];
    else if (def.type === "record") cur = def.valueType as AnySchema;
    else if (def.type === "array" && (typeof key === "number" || /^\d+$/.test(String(key)))) cur = def.element as AnySchema;
    else return undefined;
  }
  return cur ? unwrapSchema(cur) : undefined;
}

/** The object keys a schema accepts at `path` (for did-you-mean); empty where it is not an object. */
export function knownKeysAt(schema: AnySchema, path: readonly PropertyKey[]): string[] {
  const at = schemaAt(schema, path);
  if (!at) return [];
  const def = schemaDef(at);
  return def.type === "object" ? Object.keys(def.shape as object) : [];
}

function fieldName(path: readonly PropertyKey[]): string {
  let s = "";
  for (const p of path) s += typeof p === "number" ? `[${p}]` : s === "" ? String(p) : `.${String(p)}`;
  return s;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown, schema: AnySchema): string {
  const got = describeValue(valueAt(input, issue.path));
  switch (issue.code) {
    case "invalid_type":
      if (valueAt(input, issue.path) === undefined) return `required field is missing (expected ${issue.expected})`;
      return `expected ${issue.expected === "int" ? "an integer" : issue.expected}, got ${got}`;
    case "too_small": {
      const bound = Number(issue.minimum);
      if (issue.origin === "string") return `expected at least ${bound} character(s), got ${got}`;
      if (issue.origin === "array") return `expected at least ${bound} item(s), got ${got}`;
      if (bound === 0 && !issue.inclusive) return `expected a positive number, got ${got}`;
      return `expected a number ${issue.inclusive ? ">=" : ">"} ${bound}, got ${got}`;
    }
    case "too_big": {
      const bound = Number(issue.maximum);
      if (issue.origin === "string") return `expected at most ${bound} character(s), got ${got}`;
      if (issue.origin === "array") return `expected at most ${bound} item(s), got ${got}`;
      return `expected a number ${issue.inclusive ? "<=" : "<"} ${bound}, got ${got}`;
    }
    case "invalid_value":
      return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" | ")}, got ${got}`;
    case "unrecognized_keys": {
      const known = knownKeysAt(schema, issue.path);
      return issue.keys
        .map((k) => {
          const hint = didYouMean(k, known);
          return `unknown key "${k}"${hint ? ` (did you mean "${hint}"?)` : ""}`;
        })
        .join(", ");
    }
    case "invalid_format":
      return `expected ${issue.format}${issue.pattern ? ` matching ${issue.pattern}` : ""}, got ${got}`;
    case "not_multiple_of":
      return `expected a multiple of ${String(issue.divisor)}, got ${got}`;
    case "custom":
      return issue.message;
    case "invalid_union":
      return `${issue.message === "Invalid input" ? "does not match any allowed form" : issue.message}, got ${got}`;
    default:
      return `${issue.message}, got ${got}`;
  }
}

/** Every problem zod found, each with its line (when known) and a message. */
export function locateIssues(error: z.ZodError, source: LocatedSource, schema: AnySchema): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const line =
      issue.code === "unrecognized_keys" && issue.keys[0] !== undefined
        ? source.keyLineOf(issue.path, issue.keys[0])
        : source.lineOf(issue.path);
    const field =
      issue.code === "unrecognized_keys" && issue.keys.length === 1 ? fieldName([...issue.path, issue.keys[0]!]) : fieldName(issue.path);
    const message =
      issue.code === "unrecognized_keys" && issue.keys.length === 1
        ? describeIssue(issue, source.value, schema).replace(/^unknown key "[^"]*"/, "unknown key")
        : describeIssue(issue, source.value, schema);
    problems.push({ line, field, message });
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  return problems;
}

/** Formats problems as `file:line: field: message`, one per line. */
export function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${file}${p.line !== undefined ? `:${p.line}` : ""}: ${p.field ? `${p.field}: ` : ""}${p.message}`).join("\n");
}

/** Thrown when a config file has problems: the message lists all of them, one per line. */
export class ConfigError extends UserError {
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(formatProblems(file, problems));
    this.problems = problems;
  }
  override format(): string {
    return this.message;
  }
}

/**
 * Parses YAML/JSON `text` from `file` against `schema`, reporting every problem at once with its line.
 * Returns the parsed (typed, defaulted) value.
 */
export function parseConfig<S extends z.ZodType>(schema: S, text: string, file: string): z.output<S> {
  const source = parseLocated(text, file);
  return validateLocated(schema, source, file);
}

/** Validates an already-located source (e.g. after `--set` overrides were applied to its value). */
export function validateLocated<S extends z.ZodType>(schema: S, source: LocatedSource, file: string): z.output<S> {
  const result = schema.safeParse(source.value);
  if (result.success) return result.data;
  throw new ConfigError(file, locateIssues(result.error, source, schema));
}
