// The whole pipeline on generated inputs: determinism (byte-identical output with and without worker
// threads), the dataset reader (every row once per epoch, seeded order, resume), mixing weights,
// bad-input messages, --skip-bad-rows accounting, an escaped report, and no output on failure.
import { createHash } from "node:crypto";
import { cp, mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readShard } from "./arrow-dataset.js";
import { curateSchema, type CurateConfigInput } from "./config.js";
import { CuratedDataset, type DatasetBatch } from "./dataset-reader.js";
import { inspectDataset } from "./inspect.js";
import { curate, type CurateSummary } from "./pipeline.js";

let dir: string;

const chatRow = (i: number) => ({
  messages: [
    { role: "user", content: `Question ${i}: what is ${i} times 3?` },
    { role: "assistant", content: `${i} times 3 is ${3 * i}.` },
  ],
});

async function writeJsonl(name: string, rows: unknown[]): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return p;
}

async function run(config: CurateConfigInput, out: string): Promise<CurateSummary> {
  return curate({ config: curateSchema.parse(config), outDir: join(dir, out), resolvePath: (p) => join(dir, p) });
}

async function hashes(d: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const f of (await readdir(d)).sort())
    out[f] = createHash("sha256")
      .update(await readFile(join(d, f)))
      .digest("hex");
  return out;
}

let base: CurateConfigInput;
let first: CurateSummary;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "owntune-curate-"));
  const chats = Array.from({ length: 240 }, (_, i) => chatRow(i));
  chats.push(chatRow(5), chatRow(17)); // exact duplicates
  await writeJsonl("chat.jsonl", chats);
  await writeJsonl("text.jsonl", [
    ...Array.from({ length: 30 }, (_, i) => ({
      text: `Note ${i}. The river rose in spring and the town rebuilt its bridge, stone by stone, for the ${i}th time.`,
    })),
    { text: "<script>alert('x')</script> BUY NOW" },
  ]);
  base = {
    inputs: [{ path: "chat.jsonl" }, { path: "text.jsonl", weight: 2 }],
    seq_len: 96,
    seed: 3,
    val_fraction: 0.1,
    dedup: { exact: true, near: { threshold: 0.9 } },
    filters: { blocklist: { patterns: ["buy now"] } },
    workers: 2,
  };
  first = await run(base, "first");
}, 120_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("determinism", () => {
  it("writes byte-identical files for the same inputs, config and seed, with or without workers", async () => {
    const again = await run({ ...base, workers: 0 }, "second");
    expect(await hashes(again.outDir)).toEqual(await hashes(first.outDir));
  });

  it("changes the output when the seed changes", async () => {
    const other = await run({ ...base, seed: 4, workers: 0 }, "other-seed");
    expect((await hashes(other.outDir))["train-00000.arrow"]).not.toBe((await hashes(first.outDir))["train-00000.arrow"]);
  });
});

describe("the dataset directory", () => {
  it("records counts, drops per filter, splits and the schema version", async () => {
    const m = first.manifest;
    expect(m.format_version).toBe(2);
    expect(m.counts.rows_read).toBe(242 + 31);
    expect(m.drops).toEqual({ blocklist: { pattern: 1 }, dedup_exact: { exact_duplicate: 2 } });
    expect(m.counts.examples_kept).toBe(240 + 30);
    // Weight 2 on the text input: each of its train examples appears twice (its val examples once).
    const extra = m.counts.train_examples! - (m.counts.examples_kept! - m.counts.val_examples!);
    expect(extra).toBeGreaterThan(20);
    expect(extra).toBeLessThanOrEqual(30);
    expect(m.counts.val_examples).toBe(27);
    expect(Object.keys(await hashes(first.outDir))).toEqual(["manifest.json", "report.html", "train-00000.arrow", "val-00000.arrow"]);
  });

  it("escapes dropped examples in report.html", async () => {
    const html = await readFile(join(first.outDir, "report.html"), "utf8");
    expect(html).toContain("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; BUY NOW");
    expect(html).not.toContain("<script>");
    expect(html).not.toMatch(/https?:\/\//);
  });

  it("stores rows whose trained tokens match the manifest, with segments and positions per document", async () => {
    const m = first.manifest;
    const shard = await readShard(join(first.outDir, "train-00000.arrow"), m.seq_len);
    let real = 0;
    let trained = 0;
    for (let i = 0; i < shard.rows * m.seq_len; i++) {
      if (shard.columns.segment_ids[i] !== 0) real++;
      trained += shard.columns.loss_mask[i]!;
      if (shard.columns.segment_ids[i] === 0) expect(shard.columns.loss_mask[i]).toBe(0);
    }
    expect(real).toBe(m.splits.train.tokens);
    expect(trained).toBe(m.splits.train.trained_tokens);
  });
});

describe("dataset reader", () => {
  const collect = async (ds: CuratedDataset, opts: Parameters<CuratedDataset["batches"]>[1]) => {
    const out: DatasetBatch[] = [];
    for await (const b of ds.batches("train", opts)) out.push(b);
    return out;
  };
  const rowKeys = (batches: DatasetBatch[]) =>
    batches.flatMap((b) =>
      Array.from({ length: b.batchSize }, (_, i) => Array.from(b.inputIds.subarray(i * b.seqLen, (i + 1) * b.seqLen)).join(",")),
    );

  it("yields every row once per epoch, in an order fixed by the seed, and resumes from a saved position", async () => {
    const ds = await CuratedDataset.open(first.outDir);
    const rows = ds.rows("train");
    const a = await collect(ds, { batchSize: 4, seed: 1 });
    const b = await collect(ds, { batchSize: 4, seed: 1 });
    const c = await collect(ds, { batchSize: 4, seed: 2 });
    expect(rowKeys(a)).toEqual(rowKeys(b));
    expect(rowKeys(a)).not.toEqual(rowKeys(c));
    expect(rowKeys(a).length).toBe(rows);
    expect(new Set(rowKeys(a)).size).toBe(new Set(rowKeys(c)).size);
    expect([...rowKeys(a)].sort()).toEqual([...rowKeys(c)].sort());
    // Resume after the third batch: the rest matches the uninterrupted run, into the next epoch.
    const two = await collect(ds, { batchSize: 4, seed: 1, epochs: 2 });
    const resumed = await collect(ds, { batchSize: 4, seed: 1, epochs: 2, start: two[2]!.next });
    expect(rowKeys(resumed)).toEqual(rowKeys(two.slice(3)));
    expect(two[a.length - 1]!.next).toEqual({ epoch: 1, offset: 0 });
  });

  it("refuses a dataset written by another format version", async () => {
    const copy = await run({ ...base, workers: 0 }, "old-version");
    const manifestPath = join(copy.outDir, "manifest.json");
    const m = JSON.parse(await readFile(manifestPath, "utf8"));
    await writeFile(manifestPath, JSON.stringify({ ...m, format_version: 0 }));
    await expect(CuratedDataset.open(copy.outDir)).rejects.toThrow(
      expect.objectContaining({ message: "dataset format 0, this owntune reads 2", hint: 're-run "owntune curate"' }),
    );
  });
});

describe("bad input", () => {
  it("stops at a malformed JSON line with file:line, leaving nothing under the output name", async () => {
    await writeJsonl("bad.jsonl", [chatRow(1), "{not json", chatRow(2)]);
    const err = await run({ inputs: [{ path: "bad.jsonl" }], workers: 0 }, "bad-out").catch((e) => e);
    expect(err.format()).toMatch(/^bad\.jsonl:2: malformed JSON \(.*\); fix the row, or pass --skip-bad-rows to skip such rows$/);
    expect(existsSync(join(dir, "bad-out"))).toBe(false);
    expect((await readdir(dir)).filter((f) => f.startsWith(".bad-out"))).toEqual([]);
  });

  it("names the missing field of a row", async () => {
    await writeJsonl("missing.jsonl", [chatRow(1), { messages: [{ role: "user", content: "hi" }, { role: "assistant" }] }]);
    const err = await run({ inputs: [{ path: "missing.jsonl" }], workers: 0 }, "missing-out").catch((e) => e);
    expect(err.format()).toBe(
      "missing.jsonl:2: messages[1].content: missing required field; fix the row, or pass --skip-bad-rows to skip such rows",
    );
  });

  it("skips, counts and reports bad rows with skip_bad_rows", async () => {
    await writeJsonl("mixed.jsonl", [chatRow(1), "{not json", { messages: [{ role: "robot", content: "x" }] }, chatRow(2), chatRow(3)]);
    const s = await run({ inputs: [{ path: "mixed.jsonl" }], skip_bad_rows: true, workers: 0, val_fraction: 0 }, "mixed-out");
    expect(s.manifest.drops.bad_rows).toEqual({ malformed: 1, "bad_field:messages[].role": 1 });
    expect(s.manifest.counts.examples_kept).toBe(3);
    const html = await readFile(join(s.outDir, "report.html"), "utf8");
    expect(html).toContain("mixed.jsonl:3");
    expect(html).toContain("expected system, user or assistant, got &quot;robot&quot;");
  });
});

describe("nothing to train on", () => {
  it("refuses a run whose filters drop every example, naming the filter that took them", async () => {
    await writeJsonl("short.jsonl", [{ text: "tiny" }, { text: "also tiny" }, { text: "tiny" }]);
    const err = await run({ inputs: [{ path: "short.jsonl" }], workers: 0, filters: { length: { min_chars: 100 } } }, "short-out").catch(
      (e) => e,
    );
    expect(err.format()).toBe(
      "filters.length: no training examples: all 3 row(s) read were dropped — length 3 (too_few_chars 3); most went to length: loosen it, or check the input",
    );
    expect(existsSync(join(dir, "short-out"))).toBe(false);
  });

  it("refuses an empty input file before any work, whatever the worker count", async () => {
    await writeFile(join(dir, "empty.jsonl"), "\n\n");
    for (const workers of [0, 2]) {
      const err = await run({ inputs: [{ path: "chat.jsonl" }, { path: "empty.jsonl" }], workers }, "empty-out").catch((e) => e);
      expect(err.format()).toBe("empty.jsonl: this file holds no rows (it is empty, or only blank lines); check the input path");
    }
  });

  it("refuses a missing input before loading the tokenizer or starting worker threads", async () => {
    const err = await run({ inputs: [{ path: "chat.jsonl" }, { path: "nope.jsonl" }], workers: 2 }, "nope-out").catch((e) => e);
    expect(err.format()).toBe("nope.jsonl: no such file or folder; check the input path");
  });
});

describe("integrity", () => {
  /** A copy of the first dataset, to damage. */
  async function copyOf(name: string): Promise<string> {
    const to = join(dir, name);
    await cp(first.outDir, to, { recursive: true });
    return to;
  }

  it("records each shard's sha256 in the manifest", async () => {
    const shard = first.manifest.splits.train.shards[0]!;
    expect(shard.sha256).toBe(
      createHash("sha256")
        .update(await readFile(join(first.outDir, shard.file)))
        .digest("hex"),
    );
  });

  it("catches a flipped byte in a shard when it is read for training and when inspected, naming the shard", async () => {
    const copy = await copyOf("flipped");
    const shard = join(copy, "train-00000.arrow");
    const bytes = await readFile(shard);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x04;
    await writeFile(shard, bytes);
    const ds = await CuratedDataset.open(copy); // same size: found when its bytes are read
    const err = await (async () => {
      for await (const _ of ds.batches("train", { batchSize: 2 })) throw new Error("a batch came from a damaged shard");
    })().catch((e) => e);
    expect(err.format()).toMatch(
      new RegExp(
        `^${shard}: sha256 [0-9a-f]{16}… differs from manifest\\.json's [0-9a-f]{16}…: the shard's bytes changed after curate wrote it; re-run "owntune curate"`,
      ),
    );
    await expect(inspectDataset(copy)).rejects.toThrow(/differs from manifest\.json's/);
  });

  it("catches a truncated or missing shard when the dataset is opened", async () => {
    const copy = await copyOf("truncated");
    const shard = join(copy, "val-00000.arrow");
    await truncate(shard, 100);
    await expect(CuratedDataset.open(copy)).rejects.toThrow(
      expect.objectContaining({
        file: shard,
        message: `is 100 bytes, manifest.json says ${first.manifest.splits.val.shards[0]!.bytes}: the shard was truncated or changed after curate wrote it`,
      }),
    );
    await rm(shard);
    await expect(CuratedDataset.open(copy)).rejects.toThrow(
      expect.objectContaining({ file: shard, message: "shard listed in manifest.json is missing" }),
    );
  });
});
