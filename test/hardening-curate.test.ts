// The problems of issue 11 that concern data, reproduced as a user meets them (the CLI as a child
// process, killed if it hangs): every command ends, bad input is one located exit 2, nothing of the
// user's is deleted, an empty dataset is refused, a damaged shard is caught.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { owntuneAsync } from "./owntune.js";

/** A command that has not ended by then hangs (they take seconds here). */
const HANG_MS = 90_000;
let dir: string;
const run = (args: string[]) => owntuneAsync(args, dir, {}, HANG_MS);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "owntune-hardening-"));
  const rows = Array.from({ length: 30_000 }, (_, i) => `"row ${i} of a csv past one read chunk (1 MiB)",${i}`);
  writeFileSync(join(dir, "extra-column.csv"), ["text,n", '"bad row",2,3', ...rows].join("\n") + "\n");
  writeFileSync(join(dir, "no-layout.csv"), ["foo,bar", ...rows].join("\n") + "\n");
  const gz = gzipSync(Array.from({ length: 3000 }, (_, i) => JSON.stringify({ text: `row ${i} ${Math.sin(i).toString(36)}` })).join("\n"));
  writeFileSync(join(dir, "truncated.jsonl.gz"), gz.subarray(0, gz.length >> 1));
  writeFileSync(
    join(dir, "chat.jsonl"),
    Array.from({ length: 30 }, (_, i) => JSON.stringify({ text: `Example ${i}: the quick brown fox jumps over the lazy dog.` })).join(
      "\n",
    ) + "\n",
  );
  writeFileSync(join(dir, "empty.jsonl"), "");
  writeFileSync(join(dir, "my-notes.txt"), "precious");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("curate always ends with one located line for bad input", () => {
  it("ends with exit 2 for a missing input, with worker threads started or not", async () => {
    const [pool, main] = await Promise.all([
      run(["curate", "--input", "nope.jsonl", "--out", "o1"]),
      run(["curate", "--input", "nope.jsonl", "--out", "o1", "--workers", "0"]),
    ]);
    for (const r of [pool, main]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain("error: nope.jsonl: no such file or folder; check the input path");
    }
  });

  it("ends with exit 2 for a CSV row with an extra column, and when a layout problem abandons the CSV reader", async () => {
    const [extra, extraMain, layout] = await Promise.all([
      run(["curate", "--input", "extra-column.csv", "--out", "o2"]),
      run(["curate", "--input", "extra-column.csv", "--out", "o2", "--workers", "0"]),
      run(["curate", "--input", "no-layout.csv", "--out", "o2", "--workers", "0"]),
    ]);
    for (const r of [extra, extraMain]) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^error: extra-column\.csv:2: malformed CSV \(Invalid Record Length/m);
    }
    expect(layout.code, layout.stderr).toBe(2);
    expect(layout.stderr).toMatch(/^error: no-layout\.csv:2: cannot tell the row layout from its fields \(foo, bar\)/m);
    expect(existsSync(join(dir, "o2"))).toBe(false);
  });

  it("names a truncated .jsonl.gz, a missing --model, an empty input and a YAML alias bomb (exit 2, not a bug)", async () => {
    const bomb = ["name: bomb", "a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++)
      bomb.push(
        `${"abcdefghi"[i]}: &${"abcdefghi"[i]} [${Array(9)
          .fill(`*${"abcdefghi"[i - 1]}`)
          .join(", ")}]`,
      );
    writeFileSync(join(dir, "bomb.yaml"), bomb.join("\n") + "\n");
    const [gz, model, empty, yaml] = await Promise.all([
      run(["curate", "--input", "truncated.jsonl.gz", "--out", "o3", "--workers", "0"]),
      run(["curate", "--input", "chat.jsonl", "--out", "o3", "--model", "no-such-model"]),
      run(["curate", "--input", "empty.jsonl", "--out", "o3", "--workers", "0"]),
      run(["run", "bomb.yaml"]),
    ]);
    expect(gz.stderr).toMatch(/^error: truncated\.jsonl\.gz:\d+: the compressed data ends early: the file is truncated$/m);
    expect(model.stderr.trim()).toBe("error: no-such-model: --model: no such folder");
    expect(empty.stderr).toMatch(/^error: empty\.jsonl: this file holds no rows/m);
    expect(yaml.stderr.trim()).toBe(
      "error: bomb.yaml: YAML aliases expand to too much data (more than 100 expansions); write the values out instead of nesting anchors",
    );
    for (const r of [gz, model, empty, yaml]) expect(r.code, r.stderr).toBe(2);
    expect(existsSync(join(dir, "o3"))).toBe(false);
  });

  it("refuses a dataset every example of which a filter dropped, at the config's line", async () => {
    writeFileSync(
      join(dir, "strict.yaml"),
      ["inputs:", "  - path: chat.jsonl", "filters:", "  length: { min_chars: 1000 }", "workers: 0", "out: o4", ""].join("\n"),
    );
    const r = await run(["curate", "--config", "strict.yaml"]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: strict\.yaml:4: filters\.length: no training examples: all 30 row\(s\) read were dropped — length 30/m,
    );
  });
});

describe("outputs", () => {
  it("never replaces a user's file or folder; replaces its own dataset only with --force; catches a damaged shard", async () => {
    mkdirSync(join(dir, "notes"));
    writeFileSync(join(dir, "notes", "todo.md"), "mine");
    const [file, folder] = await Promise.all([
      run(["curate", "--input", "chat.jsonl", "--out", "my-notes.txt", "--workers", "0"]),
      run(["curate", "--input", "chat.jsonl", "--out", "notes", "--workers", "0"]),
    ]);
    expect(file.code).toBe(2);
    expect(file.stderr.trim()).toBe(
      "error: my-notes.txt: --out: is an existing file; owntune never replaces a file with an output folder; choose another output folder, or move the file away",
    );
    expect(folder.code).toBe(2);
    expect(folder.stderr).toContain("error: notes: --out: is a folder that already holds other files (todo.md)");
    expect(readFileSync(join(dir, "my-notes.txt"), "utf8")).toBe("precious");
    expect(readdirSync(join(dir, "notes"))).toEqual(["todo.md"]);

    const first = await run(["curate", "--input", "chat.jsonl", "--out", "ds", "--workers", "0", "--seq-len", "64"]);
    expect(first.code, first.stderr).toBe(0);
    const again = await run(["curate", "--input", "chat.jsonl", "--out", "ds", "--workers", "0", "--seq-len", "64"]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("error: ds: --out: already holds a curated dataset from an earlier run; pass --force to replace it");
    // A killed earlier run's temporary beside it is removed, and said so.
    mkdirSync(join(dir, ".ds.tmp-999999999-0123abcd"));
    const forced = await run(["curate", "--input", "chat.jsonl", "--out", "ds", "--workers", "0", "--seq-len", "64", "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain("removed 1 stale temporary file(s) left by an interrupted run (.ds.tmp-999999999-0123abcd)");
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);

    const shard = join(dir, "ds", "train-00000.arrow");
    const bytes = readFileSync(shard);
    bytes[bytes.length >> 1]! ^= 1;
    writeFileSync(shard, bytes);
    const inspect = await run(["inspect", "ds"]);
    expect(inspect.code).toBe(2);
    expect(inspect.stderr).toMatch(/^error: ds\/train-00000\.arrow: sha256 [0-9a-f]{16}… differs from manifest\.json's/m);
  });
});
