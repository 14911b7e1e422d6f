// The fuzz targets: every parser owntune owns or fronts, each with a small valid input built here
// (or a fixture in fuzz/fixtures/) and the call that reads a mutated copy in full. Shared by the CI
// fuzz tests (test/fuzz-*.test.ts, 1,000+ cases each) and `pnpm bench fuzz` (10,000 each).
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { CuratedDataset, curate, curateSchema, inspectDataset, readInput, readManifest, readShard } from "@owntune/curate";
import { GgmlType, GgufValueType, readGgufHeader, readGgufTensor, writeGguf, type GgufEntry } from "@owntune/export";
import { parseAdapterConfig, randomAdapter, readPeftAdapter, writePeftAdapter } from "@owntune/lora";
import { UserError, withSafetensors, writeSafetensors } from "@owntune/core";
import { parseGemma4Config, readGemma4Config, type Gemma4Config } from "@owntune/model";
import { parseRecipe } from "@owntune/cli";
import { extremeWord, type FuzzTarget } from "./harness.js";
import { repoRoot, TOY_MODEL_CONFIG } from "../owntune.js";

const fixtures = join(repoRoot, "test/fuzz/fixtures");
const utf8 = (b: Uint8Array) => Buffer.from(b).toString("utf8");

/** The toy model of the CLI tests (2 layers, hidden 16): adapters for it are a few kB. */
const config: Gemma4Config = parseGemma4Config(TOY_MODEL_CONFIG);

/** Writes `bytes` to a file of this case, runs `read` on it, removes it. */
async function asFile<T>(dir: string, name: string, bytes: Uint8Array, read: (path: string) => Promise<T>): Promise<T> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  try {
    return await read(path);
  } finally {
    await rm(path, { force: true });
  }
}

/** Every row of an input; a malformed row is refused as curate refuses it (without --skip-bad-rows). */
async function drain(path: string, format: "jsonl" | "csv" | "arrow" | "parquet"): Promise<number> {
  let n = 0;
  for await (const row of readInput(path, format)) {
    if (row.error !== undefined) throw new UserError(row.error, { file: row.file, line: row.line });
    n++;
  }
  return n;
}

export const safetensorsTarget: FuzzTarget = {
  name: "safetensors",
  async setup(dir) {
    const path = join(dir, "base.safetensors");
    const tensors = [
      { name: "a", dtype: "F32" as const, shape: [4, 8] },
      { name: "b.weight", dtype: "BF16" as const, shape: [16] },
      { name: "c", dtype: "F16" as const, shape: [2, 3, 4] },
      { name: "empty", dtype: "F32" as const, shape: [0, 3] },
    ];
    await writeSafetensors(path, tensors, (t) => Float32Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, (_, i) => i / 7 - 1), {
      metadata: { format: "pt" },
    });
    return readFile(path);
  },
  parse: (bytes, dir, i) =>
    asFile(dir, `c${i}.safetensors`, bytes, (path) =>
      withSafetensors(path, async (f) => {
        for (const e of f.entries.values()) await (["F32", "F16", "BF16"].includes(e.dtype) ? f.read(e.name) : f.readRaw(e.name));
      }),
    ),
};

export const ggufTarget: FuzzTarget = {
  name: "GGUF",
  async setup(dir) {
    const path = join(dir, "base.gguf");
    const metadata = new Map<string, GgufEntry>([
      ["general.architecture", { type: GgufValueType.STRING, value: "gemma4" }],
      ["general.alignment", { type: GgufValueType.UINT32, value: 32 }],
      ["gemma4.block_count", { type: GgufValueType.UINT32, value: 4 }],
      ["gemma4.rope.freq_base", { type: GgufValueType.FLOAT32, value: 10000 }],
      ["tokenizer.ggml.tokens", { type: 9, itemType: GgufValueType.STRING, value: ["<pad>", "<bos>", "a", "b", "▁c"] }],
      ["tokenizer.ggml.scores", { type: 9, itemType: GgufValueType.FLOAT32, value: [0, 0, -1, -2, -3] }],
      ["general.file_type", { type: GgufValueType.UINT64, value: 7n }],
    ]);
    const rows = (ne: number[]) => (start: number, count: number) =>
      Promise.resolve(Float32Array.from({ length: count * ne[0]! }, (_, k) => Math.sin(start * 31 + k)));
    const tensors = [
      { name: "token_embd.weight", ne: [32, 2], type: GgmlType.F32 },
      { name: "blk.0.attn_q.weight", ne: [64, 2], type: GgmlType.Q8_0 },
      { name: "blk.0.ffn_up.weight", ne: [256, 1], type: GgmlType.Q4_K },
    ].map((t) => ({ ...t, readRows: rows(t.ne) }));
    await writeGguf(path, { metadata, tensors, threads: 1 });
    return readFile(path);
  },
  // A path per case: the reader caches the last header by path, size and modification time.
  parse: (bytes, dir, i) =>
    asFile(dir, `c${i}.gguf`, bytes, async (path) => {
      const h = await readGgufHeader(path);
      for (const t of h.tensors) await readGgufTensor(h, t.name);
    }),
};

export const configJsonTarget: FuzzTarget = {
  name: "config.json",
  setup: async () => Buffer.from(JSON.stringify(TOY_MODEL_CONFIG, null, 2)),
  parse: async (bytes, dir, i) => {
    const sub = join(dir, `m${i}`);
    await mkdir(sub);
    try {
      await writeFile(join(sub, "config.json"), bytes);
      await readGemma4Config(join(sub, "config.json"));
    } finally {
      await rm(sub, { recursive: true, force: true });
    }
  },
};

/** A PEFT adapter folder for the toy model; `adapterTarget` mutates its weights file, `adapterConfigTarget` its config. */
async function writeAdapter(dir: string): Promise<string> {
  const base = join(dir, "adapter");
  await writePeftAdapter(base, randomAdapter(config, { rank: 2, targets: ["q_proj", "down_proj"] }), { dtype: "BF16" });
  return base;
}

export const adapterTarget: FuzzTarget = {
  name: "PEFT adapter (adapter_model.safetensors)",
  setup: async (dir) => readFile(join(await writeAdapter(dir), "adapter_model.safetensors")),
  parse: async (bytes, dir, i) => {
    const sub = join(dir, `a${i}`);
    await mkdir(sub);
    try {
      await copyFile(join(dir, "adapter", "adapter_config.json"), join(sub, "adapter_config.json"));
      await writeFile(join(sub, "adapter_model.safetensors"), bytes);
      await readPeftAdapter(sub, config);
    } finally {
      await rm(sub, { recursive: true, force: true });
    }
  },
};

export const adapterConfigTarget: FuzzTarget = {
  name: "adapter_config.json",
  setup: async (dir) => readFile(join(await writeAdapter(dir), "adapter_config.json")),
  parse: async (bytes) => parseAdapterConfig(utf8(bytes), "adapter_config.json"),
};

export const recipeTarget: FuzzTarget = {
  name: "recipe YAML",
  setup: () => readFile(join(repoRoot, "recipes/quickstart.yaml")),
  parse: async (bytes) => parseRecipe(utf8(bytes), "recipe.yaml"),
};

const JSONL =
  [
    { text: "The quick brown fox jumps over the lazy dog." },
    {
      messages: [
        { role: "user", content: "héllo, ça va?" },
        { role: "assistant", content: "très bien 👋" },
      ],
    },
    { prompt: "2+2=", completion: "4" },
    { text: 'line with "quotes", commas, and a tab\there', n: 12345, f: 0.5, ok: true, none: null },
  ]
    .map((r) => JSON.stringify(r))
    .join("\n") + "\n";

export const jsonlTarget: FuzzTarget = {
  name: "JSONL reader",
  setup: async () => Buffer.from(JSONL),
  parse: (bytes, dir, i) => asFile(dir, `c${i}.jsonl`, bytes, (p) => drain(p, "jsonl")),
};

export const jsonlGzTarget: FuzzTarget = {
  name: "JSONL reader (.jsonl.gz)",
  setup: async () => gzipSync(JSONL.repeat(20)),
  parse: (bytes, dir, i) => asFile(dir, `c${i}.jsonl.gz`, bytes, (p) => drain(p, "jsonl")),
};

export const csvTarget: FuzzTarget = {
  name: "CSV reader",
  setup: async () =>
    Buffer.from(
      'text,label,score\n"plain row",a,1\n"a row, with a comma",b,2\n"a row\nover two lines",c,3\n"""quoted"" words",d,4.5\nünïcödé 👋,e,-1\n',
    ),
  parse: (bytes, dir, i) => asFile(dir, `c${i}.csv`, bytes, (p) => drain(p, "csv")),
};

export const arrowInputTarget: FuzzTarget = {
  name: "Arrow IPC reader (HF datasets stream)",
  setup: () => readFile(join(fixtures, "chat.arrow")),
  parse: (bytes, dir, i) => asFile(dir, `c${i}.arrow`, bytes, (p) => drain(p, "arrow")),
};

export const parquetTarget: FuzzTarget = {
  name: "Parquet reader",
  setup: () => readFile(join(fixtures, "chat.parquet")),
  parse: (bytes, dir, i) => asFile(dir, `c${i}.parquet`, bytes, (p) => drain(p, "parquet")),
};

/** A small curated dataset (seq_len 64) in `dir/ds`, made once per target setup. */
async function curateSmall(dir: string): Promise<string> {
  const input = join(dir, "in.jsonl");
  const rows = Array.from({ length: 40 }, (_, i) => JSON.stringify({ text: `example ${i}: ${"word ".repeat(3 + (i % 9))}end` }));
  await writeFile(input, rows.join("\n") + "\n");
  const outDir = join(dir, "ds");
  await curate({ config: curateSchema.parse({ inputs: [{ path: input }], seq_len: 64, workers: 0, val_fraction: 0.1 }), outDir });
  return outDir;
}

export const datasetShardTarget: FuzzTarget = {
  name: "dataset shard (Arrow IPC file)",
  setup: async (dir) => readFile(join(await curateSmall(dir), "train-00000.arrow")),
  parse: (bytes, dir, i) => asFile(dir, `c${i}.arrow`, bytes, (p) => readShard(p, 64)),
};

/** The shard again, each header word in turn set to an extreme value (a fixed sweep: what found apache-arrow spinning). */
export const datasetShardWordsTarget: FuzzTarget = {
  ...datasetShardTarget,
  name: "dataset shard (every header word extreme)",
  mutate: extremeWord,
};

export const manifestTarget: FuzzTarget = {
  name: "dataset manifest.json",
  setup: async (dir) => readFile(join(await curateSmall(dir), "manifest.json")),
  parse: async (bytes, dir) => {
    const ds = join(dir, "ds");
    await writeFile(join(ds, "manifest.json"), bytes);
    await readManifest(ds);
    await CuratedDataset.open(ds);
    await inspectDataset(ds); // every shard read and checked against the manifest, as the trainer's reads are
  },
};

export const allTargets: readonly FuzzTarget[] = [
  safetensorsTarget,
  ggufTarget,
  configJsonTarget,
  adapterTarget,
  adapterConfigTarget,
  recipeTarget,
  jsonlTarget,
  jsonlGzTarget,
  csvTarget,
  arrowInputTarget,
  parquetTarget,
  datasetShardTarget,
  datasetShardWordsTarget,
  manifestTarget,
];
