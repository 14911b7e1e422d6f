// The README's first command: `owntune run recipes/quickstart.yaml` end to end, from a fresh
// working directory — model init, curate, export, verify against llama.cpp — and what it leaves.
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { owntuneAsync, repoRoot, type CliResult } from "./owntune.js";

describe("recipes/quickstart.yaml", () => {
  let cwd: string;
  let run: CliResult;
  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), "owntune-quickstart-"));
    run = await owntuneAsync(["run", join(repoRoot, "recipes/quickstart.yaml"), "--json"], cwd);
  }, 600_000);

  it("runs every stage and exits 0", () => {
    expect(run.stderr).not.toMatch(/internal error/);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as { stages: Array<{ stage: string; outDir: string; summary: Record<string, unknown> }> };
    expect(report.stages.map((s) => s.stage)).toEqual(["curate", "export"]);
    const [curate, exp] = report.stages;
    expect(curate!.outDir).toBe(join(cwd, "runs/quickstart/curate"));
    expect(curate!.summary.train_rows).toBeGreaterThan(0);
    expect(exp!.summary.verify_ok).toBe(true);
  });

  it("leaves the model, the dataset and the export under runs/quickstart/, and no temp files", () => {
    const root = join(cwd, "runs/quickstart");
    expect(readdirSync(root).sort()).toEqual(["curate", "export", "model"]);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]) {
      expect(existsSync(join(root, "model", f)), f).toBe(true);
    }
    const manifest = JSON.parse(readFileSync(join(root, "curate/manifest.json"), "utf8")) as { counts?: unknown };
    expect(manifest).toBeTypeOf("object");
    expect(readdirSync(join(root, "curate"))).toEqual(expect.arrayContaining(["manifest.json", "train-00000.arrow", "report.html"]));
    expect(statSync(join(root, "export/model-Q4_K_M.gguf")).size).toBeGreaterThan(1e6);
    const verify = JSON.parse(readFileSync(join(root, "export/verify.json"), "utf8")) as { ok: boolean };
    expect(verify.ok).toBe(true);
    expect(readdirSync(join(root, "export")).sort()).toEqual(["Modelfile", "model-Q4_K_M.gguf", "verify.json"]);
    const leftovers = [root, ...["model", "curate", "export"].map((d) => join(root, d))].flatMap((d) =>
      readdirSync(d).filter((f) => f.includes(".tmp-")),
    );
    expect(leftovers).toEqual([]);
  });
});
