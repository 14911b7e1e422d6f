// Curation at any size: the spill path (Parquet + DuckDB) and `--shard i/N` × N + `--merge` write the
// same bytes as the in-memory path, with near-duplicates straddling shards, weights and a val split.
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "@owntune/core";
import { curateSchema, type CurateConfigInput } from "./config.js";
import { setDuckDBImporter } from "./duckdb.js";
import { curate, curateMerge, curateShard, type CurateSummary } from "./pipeline.js";

let dir: string;
const WORDS =
  "river town bridge market season harvest record council canal storm letter spice merchant library water summer travel history farmer garden".split(
    " ",
  );

async function hashes(d: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.isFile())
      out[e.name] = createHash("sha256")
        .update(await readFile(join(d, e.name)))
        .digest("hex");
  }
  return out;
}

const config: CurateConfigInput = {
  inputs: [
    { path: "chat.jsonl", weight: 0.7 },
    { path: "notes.jsonl", weight: 1.5 },
  ],
  seq_len: 160,
  seed: 11,
  val_fraction: 0.1,
  skip_bad_rows: true,
  dedup: { exact: true, near: { threshold: 0.7 } },
  filters: { length: { min_words: 4 } },
  rows_per_shard: 16,
  workers: 0,
};
const run = (out: string, extra: Partial<CurateConfigInput> = {}, memoryBytes?: number, format?: "hf-parquet"): Promise<CurateSummary> =>
  curate({
    config: curateSchema.parse({ ...config, ...extra }),
    outDir: join(dir, out),
    resolvePath: (p) => join(dir, p),
    memoryBytes,
    format,
  });

/** Every row of a split's Hugging Face Parquet files, read with hyparquet (not the writer, DuckDB). */
async function hfRows(s: CurateSummary, split: "train" | "validation"): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const f of s.manifest.hf_parquet![split])
    rows.push(...(await parquetReadObjects({ file: await asyncBufferFromFile(join(s.outDir, f)), compressors })));
  return rows;
}

let inMemory: CurateSummary;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "owntune-scale-"));
  const rand = mulberry32(2);
  const sentence = () =>
    Array.from({ length: 6 + Math.floor(rand() * 10) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ") + ".";
  const docs = Array.from({ length: 160 }, () => Array.from({ length: 2 + Math.floor(rand() * 6) }, sentence).join(" "));
  const lines: string[] = [];
  for (let i = 0; i < 220; i++) {
    // Near copies (one word changed) and exact copies of earlier documents, anywhere in the file.
    const r = rand();
    const j = r < 0.3 && i > 20 ? Math.floor(rand() * i) % 160 : i % 160;
    const d = r < 0.15 && i > 20 ? docs[j]!.replace(/\w+\.$/, "bridge.") : docs[j]!;
    lines.push(
      JSON.stringify({
        messages: [
          { role: "user", content: `Tell me note ${j}.` },
          { role: "assistant", content: d },
        ],
      }),
    );
    if (i === 50) lines.push("{not json", "");
  }
  await writeFile(join(dir, "chat.jsonl"), lines.join("\n") + "\n");
  await writeFile(
    join(dir, "notes.jsonl"),
    docs
      .slice(0, 60)
      .map((d) => JSON.stringify({ text: d }))
      .join("\n") + "\n",
  );
  inMemory = await run("in-memory");
}, 120_000);

afterAll(async () => {
  setDuckDBImporter(undefined);
  await rm(dir, { recursive: true, force: true });
});

describe("curation beyond memory", () => {
  it("drops what the fixture plants: exact and near duplicates, a bad row, sampled-out copies", () => {
    const d = inMemory.manifest.drops;
    expect(d.dedup_exact?.exact_duplicate).toBeGreaterThan(3);
    expect(d.dedup_near?.near_duplicate).toBeGreaterThan(3);
    expect(d.bad_rows?.malformed).toBe(1);
    expect(d.sampling?.weight_below_1).toBeGreaterThan(3);
    expect(inMemory.manifest.splits.train.shards.length).toBeGreaterThan(2);
  });

  it("writes the same bytes when every kept example spills to Parquet and DuckDB runs the global steps", async () => {
    const spilled = await run("spilled", {}, 1);
    expect(await hashes(spilled.outDir)).toEqual(await hashes(inMemory.outDir));
    expect((await readdir(dir)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  }, 60_000);

  it.each([1, 3, 4])(
    "writes the same bytes from %i shards merged as from one process",
    async (n) => {
      const cfg = curateSchema.parse(config);
      const parts = join(dir, `parts-${n}`);
      let rows = 0;
      for (let i = 0; i < n; i++) {
        const s = await curateShard({
          config: cfg,
          outDir: join(parts, String(i)),
          resolvePath: (p) => join(dir, p),
          shard: { index: i, count: n },
        });
        rows += s.rowsRead;
      }
      expect(rows).toBe(inMemory.manifest.counts.rows_read);
      const merged = await curateMerge({ config: cfg, partsDir: parts, outDir: join(dir, `merged-${n}`) });
      expect(await hashes(merged.outDir)).toEqual(await hashes(inMemory.outDir));
    },
    60_000,
  );

  it("exports Hugging Face Parquet that carries each example, its tokens and its loss mask, in memory or merged", async () => {
    const inMem = await run("hf", {}, undefined, "hf-parquet");
    expect(await hashes(inMem.outDir)).toMatchObject(
      Object.fromEntries(Object.entries(await hashes(inMemory.outDir)).filter(([f]) => f.endsWith(".arrow"))),
    );
    const train = await hfRows(inMem, "train");
    const m = inMem.manifest;
    expect(train.length).toBe(m.counts.train_examples);
    expect((await hfRows(inMem, "validation")).length).toBe(m.counts.val_examples);
    let tokens = 0;
    let trained = 0;
    for (const r of train) {
      const ids = r.input_ids as number[];
      const mask = r.completion_mask as number[];
      expect(mask.length).toBe(ids.length);
      expect(r.labels).toEqual(ids.map((id, t) => (mask[t] ? id : -100)));
      expect(r.text == null).toBe(r.messages != null);
      tokens += ids.length;
      trained += mask.reduce((a, b) => a + b, 0);
    }
    expect([tokens, trained]).toEqual([m.splits.train.tokens, m.splits.train.trained_tokens]);
    const chat = train.find((r) => r.messages != null)!;
    expect((chat.messages as Array<{ role: string }>).map((x) => x.role)).toEqual(["user", "assistant"]);
    const spilled = await run("hf-spilled", {}, 1, "hf-parquet");
    expect(await hfRows(spilled, "train")).toEqual(train);
  }, 60_000);

  it("names the step and the file when DuckDB fails on a damaged part", async () => {
    const cfg = curateSchema.parse(config);
    const parts = join(dir, "parts-damaged");
    await curateShard({ config: cfg, outDir: join(parts, "0"), resolvePath: (p) => join(dir, p), shard: { index: 0, count: 1 } });
    await writeFile(join(parts, "0", "examples-00000.parquet"), "not parquet at all");
    const err = await curateMerge({ config: cfg, partsDir: parts, outDir: join(dir, "merged-damaged") }).catch((e: Error) => e);
    expect(err).toMatchObject({ name: "RunFailure" });
    expect((err as Error).message).toMatch(/^DuckDB failed in reading the parts: .*examples-00000\.parquet/);
    expect((await readdir(dir)).filter((n) => n.includes("merged-damaged"))).toEqual([]);
  }, 60_000);

  it("says clearly when DuckDB cannot be loaded", async () => {
    setDuckDBImporter(() => Promise.reject(new Error("Cannot find module '@duckdb/node-bindings-linux-x64/duckdb.node'")));
    const err = await run("no-duckdb", {}, 1).catch((e: Error) => e);
    setDuckDBImporter(undefined);
    expect(err).toMatchObject({ name: "RunFailure" });
    expect((err as Error).message).toMatch(
      /^DuckDB \(@duckdb\/node-api\) could not be loaded, and a curate run larger than memory needs it: Cannot find module .*; reinstall with "pnpm install"/,
    );
    expect((await readdir(dir)).filter((n) => n.startsWith("no-duckdb") || n.startsWith(".no-duckdb"))).toEqual([]);
  });
});
