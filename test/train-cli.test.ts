// `owntune train` as users run it: a run killed with SIGKILL (before its first checkpoint, and while
// one is being written) or stopped with Ctrl-C resumes to an adapter byte-identical to an uninterrupted
// run; every user error is one located line, exit 2, with nothing written.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { owntuneAsync, repoRoot } from "./owntune.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-train-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const modelDir = join(dir, "model");
const dataDir = join(dir, "data");
const trainYaml = join(dir, "train.yaml");
// Short: 8 steps of 2 rows of 64 tokens, checkpoints every 2 steps, dropout on (its masks must resume too).
const TRAIN =
  [
    "steps: 8",
    "batch_size: 2",
    "save_every: 2",
    "keep_checkpoints: 2",
    "eval_every: 4",
    "log_every: 1",
    "seed: 3",
    "lora: { r: 4, alpha: 8, dropout: 0.1 }",
    "optimizer: { lr: 3.0e-3 }",
  ].join("\n") + "\n";

const sha = (f: string) => createHash("sha256").update(readFileSync(f)).digest("hex");
const adapterHashes = (run: string) => ["adapter_model.safetensors", "adapter_config.json"].map((f) => sha(join(run, "adapter", f)));
const train = (out: string, ...extra: string[]) =>
  owntuneAsync(["train", "--model", modelDir, "--data", dataDir, "--out", out, "--config", trainYaml, ...extra]);

beforeAll(async () => {
  writeFileSync(trainYaml, TRAIN);
  const m = await owntuneAsync(["init-model", "--out", modelDir, "--preset", "gemma4-tiny", "--seed", "0"]);
  expect(m.code, m.stderr).toBe(0);
  const chats = join(dir, "chats.jsonl");
  writeFileSync(chats, readFileSync(join(repoRoot, "datasets/tiny-pirate/data.jsonl"), "utf8").split("\n").slice(0, 30).join("\n") + "\n");
  const c = await owntuneAsync(["curate", "--input", chats, "--out", dataDir, "--model", modelDir, "--seq-len", "64", "--workers", "0"]);
  expect(c.code, c.stderr).toBe(0);
}, 300_000);

/** Starts `owntune train`, and sends `signal` once stderr shows `when`; resolves with the exit. */
function trainUntil(
  out: string,
  extra: string[],
  when: RegExp,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  const tsx = pathToFileURL(createRequire(join(repoRoot, "package.json")).resolve("tsx")).href;
  const args = [
    "--conditions=@owntune/source",
    "--import",
    tsx,
    join(repoRoot, "packages/cli/src/main.ts"),
    "train",
    "--model",
    modelDir,
    "--data",
    dataDir,
    "--out",
    out,
    "--config",
    trainYaml,
    ...extra,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, FORCE_COLOR: "0" } });
    let stderr = "";
    let sent = false;
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
      if (!sent && when.test(stderr)) {
        sent = true;
        child.kill(signal);
      }
    });
    child.stdout.resume();
    child.on("error", reject);
    child.on("close", (code, sig) => resolve({ code, signal: sig, stderr }));
  });
}

describe("owntune train: interrupted runs", () => {
  it(
    "resumes after SIGKILL (before the first checkpoint and during one) and Ctrl-C to a byte-identical adapter",
    { timeout: 600_000 },
    async () => {
      const whole = join(dir, "whole");
      const ref = await train(whole);
      expect(ref.code, ref.stderr).toBe(0);
      expect(ref.stdout).toMatch(/^trained: 8 steps, loss [\d.]+/);
      expect(ref.stderr).toMatch(/targets skipped: k_proj, v_proj on layers 4-5 \(KV-shared layers/);
      const want = adapterHashes(whole);

      const out = join(dir, "killed");
      // 1. Killed before any checkpoint exists: --resume starts over and says so.
      const k1 = await trainUntil(out, [], /step 1\/8/, "SIGKILL");
      expect(k1.signal).toBe("SIGKILL");
      const refused = await train(out);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        /holds this run, interrupted after step [01] of 8; pass --resume to continue it, or --force to start over/,
      );
      // 2. Ctrl-C after step 3: a checkpoint of step 3, exit 130.
      const k2 = await trainUntil(out, ["--resume"], /step 3\/8/, "SIGINT");
      expect(k2.stderr).toMatch(/no complete checkpoint in .* yet: starting from step 0/);
      expect(k2.code, k2.stderr).toBe(130);
      expect(k2.stderr).toMatch(/stopping after the current micro-batch and writing a checkpoint/);
      expect(readdirSync(join(out, "checkpoints"))).toContain("step-000003");
      // A stale temporary folder of a dead writer is removed on resume, and said.
      mkdirSync(join(out, "checkpoints", ".step-000004.tmp-4194305-0badf00d"));
      // 3. SIGKILL as step 6's checkpoint is being written.
      const k3 = await trainUntil(out, ["--resume"], /step 6\/8/, "SIGKILL");
      expect(k3.stderr).toMatch(/resuming from .*step-000003 \(step 3 of 8\)/);
      expect(k3.stderr).toMatch(/removed 1 stale temporary file\(s\) left by an interrupted run/);
      // 4. To the end.
      const done = await train(out, "--resume");
      expect(done.code, done.stderr).toBe(0);
      expect(adapterHashes(out)).toEqual(want);
      const steps = readFileSync(join(out, "metrics.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
        .filter((r) => r.type === "train")
        .map((r) => r.step);
      expect(steps).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      const temps = [out, join(out, "checkpoints")].flatMap((d) => readdirSync(d).filter((f) => f.includes(".tmp-")));
      expect(temps).toEqual([]);
      expect(readdirSync(out).sort()).toEqual(["adapter", "checkpoints", "metrics.jsonl", "report.html", "run.json"]);
    },
  );
});

describe("owntune train: user errors are one located line, exit 2, nothing written", () => {
  const expectRefused = async (r: { code: number; stderr: string }, line: RegExp) => {
    expect(r.code, r.stderr).toBe(2);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(line);
  };

  it("names an unknown target module at its line, with a did-you-mean", { timeout: 120_000 }, async () => {
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "steps: 2\nlora:\n  targets: [q_proj, gate_prj]\n");
    const out = join(dir, "never1");
    const r = await owntuneAsync(["train", "--model", modelDir, "--data", dataDir, "--out", out, "--config", bad]);
    await expectRefused(r, /^error: .*bad\.yaml:3: lora\.targets\[1\]: unknown target module "gate_prj" \(did you mean "gate_proj"\?\)/);
    expect(existsSync(out)).toBe(false);
  });

  it("refuses a dataset curated with another tokenizer, naming both", { timeout: 120_000 }, async () => {
    const other = join(dir, "other-model");
    cpSync(modelDir, other, { recursive: true });
    const tj = join(other, "tokenizer.json");
    writeFileSync(tj, JSON.stringify(JSON.parse(readFileSync(tj, "utf8")))); // same tokens, other bytes: another identity
    const r = await owntuneAsync(["train", "--model", other, "--data", dataDir, "--out", join(dir, "never2"), "--set", "steps=1"]);
    await expectRefused(
      r,
      /manifest\.json: tokenizer: the dataset was curated with another tokenizer \(tokenizer\.json, sha256 [0-9a-f]{12}…\) than the model's \(tokenizer\.json, sha256 [0-9a-f]{12}… in /,
    );
    rmSync(other, { recursive: true, force: true });
  });

  it("refuses rows longer than the model's context", { timeout: 120_000 }, async () => {
    const short = join(dir, "short-model");
    cpSync(modelDir, short, { recursive: true });
    const cj = join(short, "config.json");
    writeFileSync(cj, JSON.stringify({ ...JSON.parse(readFileSync(cj, "utf8")), max_position_embeddings: 32 }));
    const r = await owntuneAsync(["train", "--model", short, "--data", dataDir, "--out", join(dir, "never3"), "--set", "steps=1"]);
    await expectRefused(r, /manifest\.json: seq_len: rows hold 64 tokens \(seq_len\), longer than the model's context of 32 tokens/);
    rmSync(short, { recursive: true, force: true });
  });

  it(
    "refuses a run folder that holds another run, and a resume with a changed setting, naming the field",
    { timeout: 300_000 },
    async () => {
      const out = join(dir, "short-run");
      const first = await train(out, "--set", "steps=2");
      expect(first.code, first.stderr).toBe(0);
      const before = readFileSync(join(out, "run.json"), "utf8");
      await expectRefused(
        await train(out, "--set", "steps=2", "--set", "optimizer.lr=1e-3"),
        /run\.json: optimizer\.lr is 0\.001 now but 0\.003 in the run already here; choose another --out, or --force to replace it/,
      );
      await expectRefused(
        await train(out, "--set", "steps=2", "--set", "lora.r=8", "--resume"),
        /lora\.r is 8 now but 4 in the run already here; a resume must keep every setting that changes the result/,
      );
      expect(readFileSync(join(out, "run.json"), "utf8")).toBe(before);
      const again = await train(out, "--set", "steps=2");
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/^already trained: 2 steps/);
      const seen = await owntuneAsync(["inspect", out]);
      expect(seen.code, seen.stderr).toBe(0);
      expect(seen.stdout).toMatch(/short-run: training run, complete, step 2 of 2\n/);
      expect(seen.stdout).toMatch(/adapter\/: PEFT adapter of step 2/);
    },
  );

  it("never touches a folder or file that is not an owntune run", { timeout: 120_000 }, async () => {
    const mine = join(dir, "mine");
    mkdirSync(mine);
    writeFileSync(join(mine, "notes.txt"), "keep me");
    await expectRefused(
      await train(mine, "--set", "steps=1", "--force"),
      /mine: is not empty and holds no owntune training run \(no run\.json\); nothing there was changed/,
    );
    expect(readdirSync(mine)).toEqual(["notes.txt"]);
    const file = join(dir, "a-file");
    writeFileSync(file, "data");
    await expectRefused(await train(file, "--set", "steps=1"), /a-file: exists and is not a folder; choose another --out/);
    expect(readFileSync(file, "utf8")).toBe("data");
  });
});
