// The README's first command: `owntune run recipes/quickstart.yaml` end to end, from a fresh
// working directory — model init, curate, LoRA training, export, verify against llama.cpp, and
// llama.cpp's own answer from the exported file — and what it leaves.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { owntuneAsync, repoRoot, type CliResult } from "./owntune.js";
import { tempDir } from "@owntune/core/testing";

describe("recipes/quickstart.yaml", () => {
  let cwd: string;
  let run: CliResult;
  beforeAll(async () => {
    cwd = tempDir("quickstart");
    run = await owntuneAsync(["run", join(repoRoot, "recipes/quickstart.yaml"), "--json"], cwd);
  }, 600_000);

  it("runs every stage and exits 0", () => {
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { stages: Array<{ stage: string; outDir: string; summary: Record<string, unknown> }> };
    expect(report.stages.map((s) => s.stage)).toEqual(["curate", "train", "export"]);
    const [curate, train, exp] = report.stages;
    expect(curate!.outDir).toBe(join(cwd, "runs/quickstart/curate"));
    expect(curate!.summary.train_rows).toBeGreaterThan(0);
    expect(train!.summary).toMatchObject({ status: "complete", steps: 30 });
    expect(exp!.summary.verify_ok).toBe(true);
    expect(exp!.summary.verify_adapter_ok).toBe(true);
  });

  it("trains: the loss falls visibly, and llama.cpp answers in the fine-tuned style from the exported file", () => {
    const rows = readFileSync(join(cwd, "runs/quickstart/train/metrics.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { type: string; loss?: number; eval_loss?: number });
    const losses = rows.filter((r) => r.type === "train").map((r) => r.loss!);
    const evals = rows.filter((r) => r.type === "eval").map((r) => r.eval_loss!);
    expect(losses[0]).toBeGreaterThan(12); // a random model over 262,144 tokens
    expect(evals[evals.length - 1]).toBeLessThan(losses[0]! / 2);
    const report = JSON.parse(run.stdout) as { stages: Array<{ summary: Record<string, unknown> }> };
    expect(String(report.stages[2]!.summary.llama_sample)).toMatch(/^Arr, matey!/);
  });

  it("leaves the model, the dataset and the export under runs/quickstart/, and no temp files", () => {
    const root = join(cwd, "runs/quickstart");
    expect(readdirSync(root).sort()).toEqual(["curate", "export", "model", "train"]);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      expect(existsSync(join(root, "model", f)), f).toBe(true);
    }
    const manifest = JSON.parse(readFileSync(join(root, "curate/manifest.json"), "utf8")) as { counts?: unknown };
    expect(manifest).toBeTypeOf("object");
    expect(readdirSync(join(root, "curate"))).toEqual(expect.arrayContaining(["manifest.json", "train-00000.arrow", "report.html"]));
    expect(statSync(join(root, "export/model-Q8_0.gguf")).size).toBeGreaterThan(1e6);
    for (const f of ["verify.json", "verify-adapter.json"])
      expect((JSON.parse(readFileSync(join(root, "export", f), "utf8")) as { ok: boolean }).ok).toBe(true);
    expect(readdirSync(join(root, "export")).sort()).toEqual([
      "Modelfile",
      "adapter.gguf",
      "base-Q8_0.gguf",
      "model-Q8_0.gguf",
      "verify-adapter.json",
      "verify.json",
    ]);
    expect(readdirSync(join(root, "train")).sort()).toEqual([
      "adapter",
      "checkpoints",
      "metrics.jsonl",
      "report.html",
      "run.json",
      "samples.jsonl",
    ]);
    const leftovers = [root, ...["model", "curate", "train", "train/checkpoints", "export"].map((d) => join(root, d))].flatMap((d) =>
      readdirSync(d).filter((f) => f.includes(".tmp-")),
    );
    expect(leftovers).toEqual([]);
  });
});
