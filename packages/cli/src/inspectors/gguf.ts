// `owntune inspect FILE.gguf` and `owntune inspect EXPORT_DIR`: GGUF metadata (long arrays
// summarised) and tensor table; an export folder's files and its verify.json verdict.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { entryValue, GGUF_VALUE_TYPE_NAMES, ggmlTypeName, readGgufHeader } from "@owntune/export";
import { formatBytes, UserError } from "@owntune/core";
import { formatCount, type Inspection, type Inspector } from "./types.js";

/** Tensors listed in human output before the rest are summarised (--json lists all). */
const MAX_LISTED_TENSORS = 40;
/** Array values shown in full up to this length; longer ones as their length and first items. */
const MAX_SHOWN_ITEMS = 8;

async function inspectGguf(path: string): Promise<Inspection> {
  const h = await readGgufHeader(path);
  const metadata: Record<string, unknown> = {};
  const lines = [`${path}: GGUF v${h.version}, ${formatBytes(h.fileSize)}, ${h.tensors.length} tensors, ${h.metadata.size} metadata keys`];
  for (const [key, e] of h.metadata) {
    const v = entryValue(e);
    const type = e.type === 9 ? `${GGUF_VALUE_TYPE_NAMES[e.itemType]}[${(v as unknown[]).length}]` : GGUF_VALUE_TYPE_NAMES[e.type];
    const shown =
      Array.isArray(v) && v.length > MAX_SHOWN_ITEMS
        ? `[${v
            .slice(0, 4)
            .map((x) => JSON.stringify(x))
            .join(", ")}, … ${v.length} items]`
        : JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x));
    metadata[key] =
      Array.isArray(v) && v.length > MAX_SHOWN_ITEMS
        ? { type, length: v.length, first: v.slice(0, 4) }
        : typeof v === "bigint"
          ? v.toString()
          : v;
    lines.push(`  ${key} (${type}) = ${shown.length > 200 ? shown.slice(0, 200) + "…" : shown}`);
  }
  const types: Record<string, number> = {};
  let values = 0;
  for (const t of h.tensors) {
    types[ggmlTypeName(t.type)] = (types[ggmlTypeName(t.type)] ?? 0) + 1;
    values += t.ne.reduce((a, b) => a * b, 1);
  }
  lines.push(
    `  tensor types: ${Object.entries(types)
      .map(([k, n]) => `${k} ×${n}`)
      .join(", ")}; ${formatCount(values)} values`,
  );
  for (const t of h.tensors.slice(0, MAX_LISTED_TENSORS))
    lines.push(`  ${t.name}  ${ggmlTypeName(t.type)} [${t.ne.join(", ")}]  ${formatBytes(t.nbytes)}`);
  if (h.tensors.length > MAX_LISTED_TENSORS) lines.push(`  … ${h.tensors.length - MAX_LISTED_TENSORS} more (use --json for all)`);
  return {
    kind: "GGUF file",
    data: {
      path,
      version: h.version,
      bytes: h.fileSize,
      alignment: h.alignment,
      metadata,
      tensorTypes: types,
      tensors: h.tensors.map((t) => ({ name: t.name, type: ggmlTypeName(t.type), ne: t.ne, bytes: t.nbytes })),
    },
    lines,
  };
}

export const ggufInspector: Inspector = {
  kind: "GGUF file",
  matches: (path, stat) => stat.isFile() && path.endsWith(".gguf"),
  inspect: inspectGguf,
};

/** An export folder: what `owntune export` wrote (a model-*.gguf, maybe Modelfile, verify.json). */
export const exportDirInspector: Inspector = {
  kind: "export directory",
  matches: (path, stat) => stat.isDirectory() && readdirSync(path).some((f) => /^model-.+\.gguf$/.test(f)),
  async inspect(dir) {
    const files = readdirSync(dir).sort();
    const lines = [`${dir}: export directory`];
    const data: Record<string, unknown> = { path: dir, files: {} as Record<string, number> };
    for (const f of files) {
      const size = statSync(join(dir, f)).isDirectory() ? -1 : statSync(join(dir, f)).size;
      (data.files as Record<string, number>)[f] = size;
      lines.push(`  ${f}${size >= 0 ? `  ${formatBytes(size)}` : "/"}`);
    }
    const ggufs = files.filter((f) => f.endsWith(".gguf"));
    data.gguf = {};
    for (const g of ggufs) {
      const h = await readGgufHeader(join(dir, g));
      const types: Record<string, number> = {};
      for (const t of h.tensors) types[ggmlTypeName(t.type)] = (types[ggmlTypeName(t.type)] ?? 0) + 1;
      const kind = String(entryValue(h.metadata.get("general.type") ?? { type: 8, value: "model" }));
      (data.gguf as Record<string, unknown>)[g] = { type: kind, tensors: h.tensors.length, tensorTypes: types };
      lines.push(
        `  ${g}: ${kind}, ${h.tensors.length} tensors (${Object.entries(types)
          .map(([k, n]) => `${k} ×${n}`)
          .join(", ")})`,
      );
    }
    const verifyPath = join(dir, "verify.json");
    if (existsSync(verifyPath)) {
      const { summary: v, raw } = readVerifyJson(verifyPath);
      data.verify = raw;
      lines.push(
        `  verify: ${v.ok ? "passed" : "FAILED"} (max |Δ log p| ${v.logprobs.maxAbsDiff.toExponential(2)} nats, tolerance ${v.tolerance.maxAbs}; ${v.tokenization.mismatches} tokenization mismatch(es))`,
      );
    } else {
      lines.push("  verify: not run (no verify.json)");
    }
    return { kind: "export directory", data, lines };
  },
};

interface VerifySummary {
  ok: boolean;
  logprobs: { maxAbsDiff: number };
  tolerance: { maxAbs: number };
  tokenization: { mismatches: number };
}

/** An export folder's verify.json, checked for the fields the summary prints (UserError naming it otherwise). */
function readVerifyJson(path: string): { summary: VerifySummary; raw: unknown } {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UserError(e instanceof SyntaxError ? "not valid JSON" : `cannot read (${(e as NodeJS.ErrnoException).code})`, {
      file: path,
      hint: 're-run "owntune export" (or "owntune verify") to write it again',
    });
  }
  const r = v as (Partial<Record<string, Record<string, unknown>>> & { ok?: unknown }) | null;
  const num = (x: unknown) => typeof x === "number" || x === null; // JSON writes NaN as null
  if (
    !r ||
    typeof r !== "object" ||
    typeof r.ok !== "boolean" ||
    !num(r.logprobs?.maxAbsDiff) ||
    !num(r.tolerance?.maxAbs) ||
    !num(r.tokenization?.mismatches)
  ) {
    throw new UserError("not a verify report (expected ok, logprobs.maxAbsDiff, tolerance.maxAbs, tokenization.mismatches)", {
      file: path,
      hint: 're-run "owntune export" (or "owntune verify") to write it again',
    });
  }
  const n = (x: unknown) => (x === null ? Number.NaN : (x as number));
  const summary = {
    ok: r.ok,
    logprobs: { maxAbsDiff: n(r.logprobs!.maxAbsDiff) },
    tolerance: { maxAbs: n(r.tolerance!.maxAbs) },
    tokenization: { mismatches: n(r.tokenization!.mismatches) },
  };
  return { summary, raw: v };
}
