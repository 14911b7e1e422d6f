// The one rule for output folders: new or empty folders are written, an owntune output of the same
// kind is replaced only with --force, and a file, a folder of other things or another kind of output
// is never touched; temporaries of killed writers are removed and announced.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withAtomicDir } from "./atomic-write.js";
import { UserError } from "./errors.js";
import { claimOutputDir, outputKindOf, type OutputKind } from "./output-dir.js";

let root: string;
let n = 0;
const fresh = () => join(root, `o${n++}`);
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "owntune-outdir-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A folder holding an owntune output of `kind`, as the commands write them. */
function makeOutput(kind: OutputKind): string {
  const dir = fresh();
  mkdirSync(dir);
  const files: Record<OutputKind, Record<string, string>> = {
    dataset: { "manifest.json": JSON.stringify({ format: "owntune-dataset" }), "report.html": "", "train-00000.arrow": "" },
    export: { "model-Q8_0.gguf": "", Modelfile: "FROM ./model-Q8_0.gguf\n", "verify.json": "{}" },
    model: { "owntune-init.json": JSON.stringify({ format: "owntune-model", seed: 0 }), "config.json": "{}", "model.safetensors": "" },
    run: { "run.json": JSON.stringify({ format: "owntune-run" }), "metrics.jsonl": "" },
  };
  for (const [name, text] of Object.entries(files[kind])) writeFileSync(join(dir, name), text);
  return dir;
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format();
  }
  throw new Error("was not refused");
}

/** The pid of a process that has exited (so temporaries named with it are stale). */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);
}

describe("claimOutputDir", () => {
  it("accepts a path that does not exist, and an empty folder", async () => {
    expect(await claimOutputDir(fresh(), "dataset")).toEqual({ replaces: false, removedTemps: [] });
    const empty = fresh();
    mkdirSync(empty);
    expect((await claimOutputDir(empty, "export")).replaces).toBe(false);
  });

  it("never replaces a file, even with force, and leaves it as it was", async () => {
    const file = fresh();
    writeFileSync(file, "my notes");
    expect(await refusal(claimOutputDir(file, "dataset", { force: true, field: "--out" }))).toBe(
      `${file}: --out: is an existing file; owntune never replaces a file with an output folder; choose another output folder, or move the file away`,
    );
    expect(readFileSync(file, "utf8")).toBe("my notes");
  });

  it("never replaces a folder of other things, naming some of them", async () => {
    const dir = fresh();
    mkdirSync(dir);
    for (const f of ["a.txt", "b.txt", "c.txt", "d.txt"]) writeFileSync(join(dir, f), "");
    expect(await refusal(claimOutputDir(dir, "model", { force: true }))).toBe(
      `${dir}: is a folder that already holds other files (a.txt, b.txt, c.txt, … (4 entries)); owntune writes only into a new or empty folder; choose another output folder`,
    );
  });

  it("never replaces a symbolic link", async () => {
    const link = fresh();
    symlinkSync(makeOutput("dataset"), link);
    expect(await refusal(claimOutputDir(link, "dataset", { force: true }))).toMatch(/is a symbolic link/);
  });

  it.each(["dataset", "export", "model", "run"] as const)("recognises its own %s output, and replaces it only with force", async (kind) => {
    const dir = makeOutput(kind);
    expect(await outputKindOf(dir)).toBe(kind);
    expect(await refusal(claimOutputDir(dir, kind))).toMatch(/already holds .* from an earlier run; pass --force to replace it/);
    expect((await claimOutputDir(dir, kind, { force: true })).replaces).toBe(true);
  });

  it("does not replace one kind of output with another, even with force", async () => {
    const dataset = makeOutput("dataset");
    expect(await refusal(claimOutputDir(dataset, "export", { force: true }))).toBe(
      `${dataset}: holds a curated dataset, not an export folder; owntune will not replace one kind of output with another; choose another output folder`,
    );
  });

  it("does not replace its own output when the user put files of theirs into it", async () => {
    const dataset = makeOutput("dataset");
    writeFileSync(join(dataset, "notes.md"), "mine");
    expect(await refusal(claimOutputDir(dataset, "dataset", { force: true }))).toMatch(
      /also files owntune did not write \(notes\.md\); replacing it would delete them/,
    );
  });

  it("removes the temporaries of killed writers beside and inside the folder, says so, and keeps live ones", async () => {
    const parent = fresh();
    mkdirSync(parent);
    const out = join(parent, "ds");
    const pid = deadPid();
    const stale = `.ds.tmp-${pid}-0123abcd`;
    mkdirSync(join(parent, stale));
    writeFileSync(join(parent, stale, "train-00000.arrow"), "half");
    const live = `.other.tmp-${process.pid}-89abcdef`;
    writeFileSync(join(parent, live), "being written");
    const logs: string[] = [];
    const claim = await claimOutputDir(out, "dataset", { log: (l) => logs.push(l) });
    expect(claim.removedTemps).toEqual([stale]);
    expect(logs).toEqual([`removed 1 stale temporary file(s) left by an interrupted run (${stale})`]);
    expect(readdirSync(parent)).toEqual([live]);
    // Inside an output being replaced too.
    const ds = makeOutput("dataset");
    const inside = `.train-00000.arrow.tmp-${pid}-00000000`;
    writeFileSync(join(ds, inside), "half");
    expect((await claimOutputDir(ds, "dataset", { force: true })).removedTemps).toEqual([inside]);
    expect(existsSync(join(ds, inside))).toBe(false);
  });
});

describe("withAtomicDir", () => {
  it("never swaps a file for a folder, and leaves no temporary behind", async () => {
    const parent = fresh();
    mkdirSync(parent);
    const file = join(parent, "out");
    writeFileSync(file, "mine");
    await expect(withAtomicDir(file, async (tmp) => writeFileSync(join(tmp, "x"), "y"))).rejects.toThrow(/is an existing file/);
    expect(readFileSync(file, "utf8")).toBe("mine");
    expect(readdirSync(parent)).toEqual(["out"]);
  });
});
