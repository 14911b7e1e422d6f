// The problems of issue 11 that concern models and exports, reproduced through the CLI (child
// processes, killed if they hang): context length, exact integers, one line for one cause, outputs
// that never replace a user's file, exports read back safely, and what a kill -9 leaves removed.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GgmlType, GgufValueType, writeGguf } from "@owntune/export";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { argvFor, owntuneAsync, TOY_MODEL_CONFIG } from "./owntune.js";

const HANG_MS = 90_000;
let dir: string;
// Several CLI processes at once: one wasm thread each.
const run = (args: string[]) => owntuneAsync(args, dir, { OWNTUNE_WASM_THREADS: "1" }, HANG_MS);
/** The toy model with a 32-token context, so a long prompt is cheap to write. */
const config = { ...TOY_MODEL_CONFIG, max_position_embeddings: 32 };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "owntune-hardening-model-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const r = await run(["init-model", "--out", "m", "--config", "config.json", "--dtype", "f32"]);
  expect(r.code, r.stderr).toBe(0);
  writeFileSync(join(dir, "my-file"), "precious");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("model commands", () => {
  it("refuse work past the model's context and integers past 2^53, each as one located exit 2", async () => {
    writeFileSync(join(dir, "long.jsonl"), `${JSON.stringify({ ids: [2, 5] })}\n${JSON.stringify({ ids: Array(40).fill(5) })}\n`);
    const [score, prompt, tooMany, huge] = await Promise.all([
      run(["score", "--model", "m", "--input", "long.jsonl"]),
      run(["generate", "--model", "m", "--prompt", "word ".repeat(40)]),
      run(["generate", "--model", "m", "--prompt", "hi", "--max-tokens", "33"]),
      run(["generate", "--model", "m", "--prompt", "hi", "--max-tokens", "99999999999999999999"]),
    ]);
    for (const r of [score, prompt, tooMany, huge]) expect(r.code, r.stderr).toBe(2);
    expect(score.stderr).toContain(
      "error: long.jsonl:2: ids: 40 tokens, more than the model's context of 32 (max_position_embeddings); split the row into shorter ones\n",
    );
    expect(prompt.stderr).toMatch(/^error: --prompt: the prompt is \d+ tokens, the model's context is 32 \(max_position_embeddings\)/m);
    expect(tooMany.stderr).toContain("error: --max-tokens: 33 is more than the model's context of 32 tokens (max_position_embeddings)\n");
    expect(huge.stderr.trim()).toBe('error: --max-tokens: expected an integer >= 1 (at most 2^53 - 1), got "99999999999999999999"');
  });

  it("give one located line for a config.json whose one wrong field misshapes many tensors, and say what a folder lacks", async () => {
    mkdirSync(join(dir, "wrong"));
    writeFileSync(join(dir, "wrong", "config.json"), JSON.stringify({ ...config, head_dim: 4 }, null, 2));
    for (const f of ["model.safetensors", "tokenizer.json", "tokenizer_config.json"]) symlinkSync(join(dir, "m", f), join(dir, "wrong", f));
    mkdirSync(join(dir, "no-config"));
    symlinkSync(join(dir, "m", "model.safetensors"), join(dir, "no-config", "model.safetensors"));
    const [wrong, noConfig] = await Promise.all([run(["generate", "--model", "wrong", "--prompt", "hi"]), run(["inspect", "no-config"])]);
    const line =
      JSON.stringify({ ...config, head_dim: 4 }, null, 2)
        .split("\n")
        .findIndex((l) => l.includes('"head_dim"')) + 1;
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.split("\n").filter((l) => l.startsWith("error:"))).toEqual([
      expect.stringMatching(
        new RegExp(
          `^error: wrong/config\\.json:${line}: head_dim: 4 does not fit these weights, which were made with head_dim 8 \\(\\d+ tensors differ`,
        ),
      ),
    ]);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toContain("error: no-config: model folder without config.json");
  });
});

describe("outputs", () => {
  it("never replace a user's file or folder, and replace an earlier model only with --force", async () => {
    mkdirSync(join(dir, "theirs"));
    writeFileSync(join(dir, "theirs", "config.json"), "{}");
    const [initFile, exportFile, initFolder, again] = await Promise.all([
      run(["init-model", "--preset", "gemma4-tiny", "--out", "my-file"]),
      run(["export", "--model", "m", "--out", "my-file", "--quant", "F32", "--no-verify"]),
      run(["init-model", "--preset", "gemma4-tiny", "--out", "theirs"]),
      run(["init-model", "--config", "config.json", "--out", "m"]),
    ]);
    for (const r of [initFile, exportFile]) {
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        "error: my-file: --out: is an existing file; owntune never replaces a file with an output folder; choose another output folder, or move the file away",
      );
    }
    expect(initFolder.code).toBe(2);
    expect(initFolder.stderr).toContain("error: theirs: --out: is a folder that already holds other files (config.json)");
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(
      "error: m: --out: already holds a model made by owntune init-model from an earlier run; pass --force to replace it",
    );
    expect(readFileSync(join(dir, "my-file"), "utf8")).toBe("precious");
    expect(readdirSync(join(dir, "theirs"))).toEqual(["config.json"]);
  });

  it("read an export folder whose verify.json is damaged as a located exit 2", async () => {
    mkdirSync(join(dir, "export"));
    const rows = (start: number, count: number) => Promise.resolve(new Float32Array(count * 32).fill(start));
    await writeGguf(join(dir, "export", "model-F32.gguf"), {
      metadata: new Map([["general.architecture", { type: GgufValueType.STRING, value: "gemma4" }]]),
      tensors: [{ name: "token_embd.weight", ne: [32, 2], type: GgmlType.F32, readRows: rows }],
      threads: 1,
    });
    writeFileSync(join(dir, "export", "Modelfile"), "FROM ./model-F32.gguf\n");
    writeFileSync(join(dir, "export", "verify.json"), '{"ok": true, "logprobs": ');
    const r = await run(["inspect", "export"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'error: export/verify.json: not valid JSON; re-run "owntune export" (or "owntune verify") to write it again',
    );
  });

  it("remove what a killed init-model left, at the next run into that folder, and say so", async () => {
    // hidden 64: tens of MB written, so the kill lands while the temporary folder exists.
    writeFileSync(join(dir, "wide.json"), JSON.stringify({ ...config, hidden_size: 64, intermediate_size: 64 }));
    const child = spawn(process.execPath, argvFor(["init-model", "--config", "wide.json", "--out", "killed", "--dtype", "f32"]), {
      cwd: dir,
      stdio: "ignore",
    });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    const temp = () => readdirSync(dir).find((f) => f.startsWith(".killed.tmp-"));
    for (let i = 0; i < 6000 && !temp() && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    await exited;
    const left = temp();
    expect(left, "the temporary folder of the killed run").toBeDefined();
    expect(existsSync(join(dir, "killed"))).toBe(false);
    const r = await run(["init-model", "--config", "config.json", "--out", "killed", "--dtype", "f32"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`removed 1 stale temporary file(s) left by an interrupted run (${left})`);
    expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });
});
