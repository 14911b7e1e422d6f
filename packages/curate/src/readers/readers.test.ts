// Readers on small files the tests build: JSONL (+gzip), Parquet written by parquet-wasm (arrow-rs,
// snappy and zstd, as HF Hub files use), Arrow IPC file and stream (the layout HF `datasets` writes
// as data-00000-of-00001.arrow), CSV and a folder of text files; and the malformed-input messages.
import { mkdtemp, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { Field, Int32, List, Struct, Table, tableFromArrays, tableToIPC, Utf8, vectorFromArray } from "apache-arrow";
import * as parquetWasm from "parquet-wasm/node";
import { UserError } from "@owntune/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readInput, type SourceRow } from "./index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "owntune-readers-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function all(path: string, format: Parameters<typeof readInput>[1] = "auto"): Promise<SourceRow[]> {
  const out: SourceRow[] = [];
  for await (const r of readInput(path, format)) out.push(r);
  return out;
}

/** The messages column as HF stores it: list<struct<role: string, content: string>>. */
function chatTable(withId: boolean): Table {
  const message = new Struct([new Field("role", new Utf8(), true), new Field("content", new Utf8(), true)]);
  const messages = vectorFromArray(
    chat.map((c) => c.messages),
    new List(new Field("item", message, true)),
  );
  return withId ? new Table({ id: vectorFromArray([0, 1], new Int32()), messages }) : new Table({ messages });
}

const chat = [
  {
    messages: [
      { role: "user", content: "héllo" },
      { role: "assistant", content: "hi 👋" },
    ],
  },
  {
    messages: [
      { role: "user", content: "2+2" },
      { role: "assistant", content: "4" },
    ],
  },
];

describe("readers", () => {
  it("streams JSON Lines, skipping blank lines and numbering lines from 1", async () => {
    const p = join(dir, "a.jsonl");
    await writeFile(p, `${JSON.stringify(chat[0])}\n\n${JSON.stringify(chat[1])}\r\n`);
    const rows = await all(p);
    expect(rows.map((r) => [r.line, r.value])).toEqual([
      [1, chat[0]],
      [3, chat[1]],
    ]);
  });

  it("reads gzip-compressed JSON Lines", async () => {
    const p = join(dir, "a.jsonl.gz");
    await writeFile(p, gzipSync(chat.map((c) => JSON.stringify(c)).join("\n")));
    expect((await all(p)).map((r) => r.value)).toEqual(chat);
  });

  it.each(["SNAPPY", "ZSTD", "GZIP"] as const)("reads Parquet with nested list<struct> columns (%s)", async (codec) => {
    const table = chatTable(true);
    const props = new parquetWasm.WriterPropertiesBuilder().setCompression(parquetWasm.Compression[codec]).setMaxRowGroupSize(1).build();
    const bytes = parquetWasm.writeParquet(parquetWasm.Table.fromIPCStream(tableToIPC(table, "stream")), props);
    const p = join(dir, `a-${codec}.parquet`);
    await writeFile(p, bytes);
    const rows = await all(p);
    expect(rows.map((r) => r.value)).toEqual(chat.map((c, i) => ({ id: i, ...c })));
    expect(rows.map((r) => r.line)).toEqual([1, 2]);
  });

  it("reads the Arrow IPC stream format HF datasets writes, and the Arrow file format", async () => {
    const table = chatTable(false);
    table.schema.metadata.set(
      "huggingface",
      JSON.stringify({ info: { features: { messages: [{ role: { dtype: "string", _type: "Value" } }] } } }),
    );
    await mkdir(join(dir, "hf"), { recursive: true });
    await writeFile(join(dir, "hf", "data-00000-of-00001.arrow"), tableToIPC(table, "stream"));
    await writeFile(join(dir, "hf", "dataset_info.json"), "{}");
    await writeFile(join(dir, "b.arrow"), tableToIPC(tableFromArrays({ text: ["one", "two"] }), "file"));
    expect((await all(join(dir, "hf"))).map((r) => r.value)).toEqual(chat);
    expect((await all(join(dir, "b.arrow"))).map((r) => r.value)).toEqual([{ text: "one" }, { text: "two" }]);
  });

  it("reads CSV with quoted newlines, reporting where each record starts", async () => {
    const p = join(dir, "a.csv");
    await writeFile(p, 'prompt,completion\n"multi\nline",yes\nplain,"with ""quotes"""\n');
    const rows = await all(p);
    expect(rows.map((r) => [r.line, r.value])).toEqual([
      [2, { prompt: "multi\nline", completion: "yes" }],
      [4, { prompt: "plain", completion: 'with "quotes"' }],
    ]);
  });

  it("reads a folder of .txt and .md files in sorted order, one example each", async () => {
    await mkdir(join(dir, "texts", "sub"), { recursive: true });
    await writeFile(join(dir, "texts", "b.md"), "# B");
    await writeFile(join(dir, "texts", "a.txt"), "A");
    await writeFile(join(dir, "texts", "sub", "c.txt"), "C");
    await writeFile(join(dir, "texts", "skip.bin"), "x");
    expect((await all(join(dir, "texts"))).map((r) => [r.file, r.value])).toEqual([
      [join(dir, "texts", "a.txt"), { text: "A" }],
      [join(dir, "texts", "b.md"), { text: "# B" }],
      [join(dir, "texts", "sub", "c.txt"), { text: "C" }],
    ]);
  });
});

describe("malformed input", () => {
  it("marks a malformed JSON line with its line number", async () => {
    const p = join(dir, "bad.jsonl");
    await writeFile(p, '{"text": "ok"}\n{"text": nope}\n[1, 2]\n');
    const rows = await all(p);
    expect(rows[1]).toMatchObject({ line: 2, value: undefined });
    expect(rows[1]!.error).toMatch(/^malformed JSON \(Unexpected token/);
    expect(rows[2]).toMatchObject({ line: 3, error: "expected a JSON object per line, got an array" });
  });

  it("marks invalid UTF-8 (a lone continuation byte, an overlong form) with its line", async () => {
    const p = join(dir, "bad-utf8.jsonl");
    const good = Buffer.from('{"text": "fine"}\n');
    await writeFile(
      p,
      Buffer.concat([
        good,
        Buffer.from('{"text": "a'),
        Buffer.from([0x80]),
        Buffer.from('"}\n{"text": "'),
        Buffer.from([0xc0, 0xaf]),
        Buffer.from('"}\n'),
      ]),
    );
    const rows = await all(p);
    expect(rows.map((r) => [r.line, r.error])).toEqual([
      [1, undefined],
      [2, "invalid UTF-8 at byte 11 of the line"],
      [3, "invalid UTF-8 at byte 10 of the line"],
    ]);
  });

  it("stops on invalid UTF-8 in CSV with the line", async () => {
    const p = join(dir, "bad.csv");
    await writeFile(p, Buffer.concat([Buffer.from("text\nok\nbad "), Buffer.from([0xff]), Buffer.from("\n")]));
    await expect(all(p)).rejects.toThrow(expect.objectContaining({ message: "invalid UTF-8", line: 3 }));
  });

  /** A chat table whose second row's answer holds `@@é@@`, patched in the written bytes to `@@\xC3(@@` (invalid UTF-8). */
  const corrupt = (bytes: Uint8Array): Buffer => {
    const marker = Buffer.from("@@é@@");
    const out = Buffer.from(bytes);
    let hits = 0;
    for (let at = out.indexOf(marker); at >= 0; at = out.indexOf(marker, at + 1), hits++) out[at + 3] = 0x28;
    expect(hits).toBeGreaterThan(0);
    return out;
  };
  const corruptChat = () => {
    const message = new Struct([new Field("role", new Utf8(), true), new Field("content", new Utf8(), true)]);
    const rows = [
      chat[0]!.messages,
      [
        { role: "user", content: "2+2" },
        { role: "assistant", content: "x@@é@@" },
      ],
      chat[1]!.messages,
    ];
    return new Table({ messages: vectorFromArray(rows, new List(new Field("item", message, true))) });
  };
  const expectCorruptRow = (rows: SourceRow[]) => {
    expect(rows.map((r) => [r.line, r.error])).toEqual([
      [1, undefined],
      [2, "invalid UTF-8 in field messages[1].content at byte 3"],
      [3, undefined],
    ]);
    expect(rows[2]!.value).toEqual({ messages: chat[1]!.messages });
  };

  it("marks a row whose Arrow string (nested in list<struct>) is invalid UTF-8, with the field", async () => {
    const p = join(dir, "bad-utf8.arrow");
    await writeFile(p, corrupt(tableToIPC(corruptChat(), "stream")));
    expectCorruptRow(await all(p));
  });

  it("marks a row whose Parquet string (nested in list<struct>) is invalid UTF-8, with the field", async () => {
    const props = new parquetWasm.WriterPropertiesBuilder()
      .setCompression(parquetWasm.Compression.UNCOMPRESSED)
      .setDictionaryEnabled(false)
      .build();
    const bytes = parquetWasm.writeParquet(parquetWasm.Table.fromIPCStream(tableToIPC(corruptChat(), "stream")), props);
    const p = join(dir, "bad-utf8.parquet");
    await writeFile(p, corrupt(bytes));
    expectCorruptRow(await all(p));
  });

  it("refuses a file whose format it cannot tell", async () => {
    const p = join(dir, "data.xyz");
    await writeFile(p, "x");
    await expect(all(p)).rejects.toThrow("cannot tell the file format from its name");
  });

  it("reports a missing input", async () => {
    await expect(all(join(dir, "missing.jsonl"))).rejects.toThrow("no such file or folder");
  });
});

describe("readers always end, and name the file", () => {
  /** A CSV past the 1 MiB read chunk, so the parser is still being fed when it fails or is abandoned. */
  const bigCsv = async (name: string, header: string, bad: string) => {
    const p = join(dir, name);
    const rows = Array.from({ length: 60_000 }, (_, i) => `"row ${i} of a csv that is larger than one read chunk",${i}`);
    await writeFile(p, [header, bad, ...rows].join("\n") + "\n");
    return p;
  };

  it("stops on a CSV row with an extra column, mid-file, with its line", async () => {
    const p = await bigCsv("extra.csv", "text,n", '"bad row",2,3');
    await expect(all(p)).rejects.toThrow(
      expect.objectContaining({ file: p, line: 2, message: expect.stringMatching(/^malformed CSV \(Invalid Record Length/) }),
    );
  });

  it("ends when the caller stops reading a CSV early (the feed stops too)", async () => {
    const p = await bigCsv("abandoned.csv", "text,n", '"fine",1');
    let n = 0;
    for await (const _ of readInput(p, "csv")) if (++n === 3) break;
    expect(n).toBe(3);
  });

  it("refuses a truncated .jsonl.gz and a .jsonl.gz that is not gzip, with the file and line reached", async () => {
    const rows = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ text: `row ${i} ${Math.sin(i).toString(36)}` })).join("\n");
    const gz = gzipSync(rows);
    const truncated = join(dir, "truncated.jsonl.gz");
    await writeFile(truncated, gz.subarray(0, gz.length >> 1));
    const err = await all(truncated).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe("the compressed data ends early: the file is truncated");
    expect(err.line).toBeGreaterThan(1);
    const plain = join(dir, "plain.jsonl.gz");
    await writeFile(plain, '{"text": "not compressed"}\n');
    await expect(all(plain)).rejects.toThrow(
      expect.objectContaining({ file: plain, line: 1, message: "not gzip data, though the name or first bytes say so" }),
    );
  });

  it("refuses an input without rows: an empty file, a folder named like a file, an empty folder", async () => {
    await writeFile(join(dir, "empty.jsonl"), "");
    await mkdir(join(dir, "folder.jsonl"));
    await mkdir(join(dir, "empty-folder"));
    await expect(all(join(dir, "empty.jsonl"))).rejects.toThrow("this file holds no rows (it is empty, or only blank lines)");
    for (const f of ["folder.jsonl", "empty-folder"]) {
      await expect(all(join(dir, f))).rejects.toThrow(
        "this folder holds no rows (no .arrow, .parquet, .jsonl, .txt or .md files with data in it)",
      );
    }
  });

  it("refuses an Arrow stream whose metadata claims a vector of 2^31 entries, before apache-arrow builds it", async () => {
    // The file fuzzing found (apache-arrow loops building FieldNodes): a vector length in the record batch's flatbuffer.
    const bytes = Buffer.from(await readFile(join(import.meta.dirname, "../../../../test/fuzz/fixtures/chat.arrow")));
    bytes.writeBigUInt64LE(0x7fffffffn, 420);
    const p = join(dir, "huge-vector.arrow");
    await writeFile(p, bytes);
    await expect(all(p)).rejects.toThrow(/^not a readable Arrow IPC file or stream: /);
  });
});
