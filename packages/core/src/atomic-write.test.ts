import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { withAtomicDir, withAtomicFile, writeFileAtomic } from "./atomic-write.js";
import { tempDir } from "./testing/temp-dir.js";

const fresh = () => tempDir("atomic");

describe("atomic file writes", () => {
  it("writes the whole file under its final name", async () => {
    const dir = fresh();
    await writeFileAtomic(join(dir, "a.txt"), "hello");
    expect(readFileSync(join(dir, "a.txt"), "utf8")).toBe("hello");
    expect(readdirSync(dir)).toEqual(["a.txt"]);
  });

  it("leaves no file under the final name, and no temp file, when the writer throws midway", async () => {
    const dir = fresh();
    const target = join(dir, "model.gguf");
    await expect(
      withAtomicFile(target, async (f) => {
        await f.write(new Uint8Array(1 << 20));
        expect(existsSync(f.tempPath)).toBe(true);
        expect(existsSync(target)).toBe(false);
        throw new Error("disk on fire");
      }),
    ).rejects.toThrow("disk on fire");
    expect(readdirSync(dir)).toEqual([]);
  });

  it("keeps the previous file intact when a rewrite fails", async () => {
    const dir = fresh();
    const target = join(dir, "verify.json");
    writeFileSync(target, "old");
    await expect(
      withAtomicFile(target, async (f) => {
        await f.write("new, but half");
        throw new Error("interrupted");
      }),
    ).rejects.toThrow("interrupted");
    expect(readFileSync(target, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["verify.json"]);
  });

  it("patches bytes at an offset (headers written after the data)", async () => {
    const dir = fresh();
    const target = join(dir, "x.bin");
    await withAtomicFile(target, async (f) => {
      await f.write(new Uint8Array([0, 0, 0, 0, 9, 9]));
      await f.writeAt(new Uint8Array([1, 2]), 1);
      expect(f.bytesWritten).toBe(6);
    });
    expect([...readFileSync(target)]).toEqual([0, 1, 2, 0, 9, 9]);
  });

  it("removes uncommitted temp files when the process exits midway", () => {
    const dir = fresh();
    // A child process opens a file, writes part of it, and exits without committing.
    const script = [
      `import { openAtomic } from ${JSON.stringify(new URL("./atomic-write.ts", import.meta.url).href)};`,
      `const f = await openAtomic(${JSON.stringify(join(dir, "big.safetensors"))});`,
      `await f.write("partial");`,
      `process.exit(3);`,
    ].join("\n");
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    const r = spawnSync(process.execPath, ["--import", tsx, "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(3);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("atomic directory writes", () => {
  it("publishes the directory only when the builder succeeds, replacing an older one", async () => {
    const root = fresh();
    const out = join(root, "dataset");
    await withAtomicDir(out, async (tmp) => writeFileSync(join(tmp, "manifest.json"), "v1"));
    await withAtomicDir(out, async (tmp) => writeFileSync(join(tmp, "manifest.json"), "v2"));
    expect(readFileSync(join(out, "manifest.json"), "utf8")).toBe("v2");
    expect(readdirSync(root)).toEqual(["dataset"]);
  });

  it("leaves the previous directory (or nothing) when the builder throws", async () => {
    const root = fresh();
    const out = join(root, "dataset");
    await expect(
      withAtomicDir(out, async (tmp) => {
        writeFileSync(join(tmp, "train-00000.arrow"), "half");
        throw new Error("bad row");
      }),
    ).rejects.toThrow("bad row");
    expect(readdirSync(root)).toEqual([]);
    await withAtomicDir(out, async (tmp) => writeFileSync(join(tmp, "manifest.json"), "good"));
    await expect(withAtomicDir(out, async () => Promise.reject(new Error("again")))).rejects.toThrow("again");
    expect(readFileSync(join(out, "manifest.json"), "utf8")).toBe("good");
    expect(readdirSync(root)).toEqual(["dataset"]);
  });
});

describe("stale temporary names", () => {
  it("removes temps of dead processes and keeps those of live ones and other files", async () => {
    const { removeStaleTemps, tempPathFor } = await import("./atomic-write.js");
    const { mkdirSync, rmSync } = await import("node:fs");
    const dir = fresh();
    try {
      const mine = tempPathFor(join(dir, "a.bin")); // this process: alive
      writeFileSync(mine, "x");
      // pid 2^22 + 1 is above Linux's pid_max default range for a fresh machine; a dead writer's leftovers:
      const deadFile = join(dir, ".model.gguf.tmp-4194305-0123abcd");
      const deadDir = join(dir, ".checkpoints.tmp-4194305-89abcdef-old");
      writeFileSync(deadFile, "half");
      mkdirSync(deadDir);
      writeFileSync(join(deadDir, "inner"), "half");
      writeFileSync(join(dir, "user.txt"), "mine");
      const removed = await removeStaleTemps(dir);
      expect(removed.sort()).toEqual([".checkpoints.tmp-4194305-89abcdef-old", ".model.gguf.tmp-4194305-0123abcd"]);
      expect(readdirSync(dir).sort()).toEqual([mine.slice(dir.length + 1), "user.txt"].sort());
      expect(await removeStaleTemps(join(dir, "absent"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
