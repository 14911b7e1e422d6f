// `owntune run RECIPE.yaml [--stage S] [--set a.b=v]...`
import type { Command } from "commander";
import { commandIO } from "../cli-io.js";
import { loadRecipe } from "../recipe.js";
import { runRecipe } from "../run.js";

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run a recipe's stages in order (curate → train → export), each feeding the next")
    .argument("<recipe>", "recipe YAML file")
    .option("--stage <stage>", "run only this stage; earlier stages' outputs are read from disk")
    .option("--set <field=value>", "override a recipe field, e.g. --set train.optimizer.lr=1e-4 (repeatable)", collect, [])
    .option("--resume", "continue an interrupted train stage from its newest checkpoint")
    .option("--force", "replace the outputs an earlier run of this recipe wrote (never anything else)")
    .action(async (recipeFile: string, opts: { stage?: string; set: string[]; resume?: boolean; force?: boolean }, cmd: Command) => {
      const io = commandIO(cmd);
      const loaded = await loadRecipe(recipeFile, opts.set);
      const report = await runRecipe(loaded, { stage: opts.stage, resume: opts.resume, force: opts.force, ...io });
      const human = report.stages
        .map((s) => `${s.stage}: ${s.outDir}${Object.keys(s.summary).length ? `  ${JSON.stringify(s.summary)}` : ""}`)
        .join("\n");
      io.result(report, human);
      if (report.interrupted) process.exitCode = 130;
    });
}
