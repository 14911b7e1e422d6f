// The Gemma 4 recipes in recipes/: each is a valid recipe, and the training run it describes fits on a
// 24 GiB machine by the estimate the trainer itself refuses runs with (a bf16 checkpoint on the native
// kernels, recomputation as the trainer picks it). Their model folders are the user's downloads, so
// only the recipe text and the architecture are checked here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { estimateTraining, planLora, WASM_HEAP_LIMIT_BYTES, type TrainConfig } from "@owntune/lora";
import { gemma4_31b, gemma4E2b, gemma4E4b, planStorage, type Gemma4Config, type TensorFileRows } from "@owntune/model";
import { describe, expect, it } from "vitest";
import { parseRecipe } from "./recipe.js";

const recipesDir = fileURLToPath(new URL("../../../recipes/", import.meta.url));
const GIB = 2 ** 30;
const MACHINE = 24 * GIB;

const RECIPES: Array<[string, () => Gemma4Config]> = [
  ["gemma4-e2b-lora.yaml", gemma4E2b],
  ["gemma4-e4b-lora.yaml", gemma4E4b],
  ["gemma4-31b-lora.yaml", gemma4_31b],
];

describe("the Gemma 4 recipes", () => {
  it.each(RECIPES)("%s is valid, trains every layer, and its step fits in 24 GiB", (file, preset) => {
    // The stage sections are typed by their stages' schemas at run time only.
    const recipe = parseRecipe(readFileSync(join(recipesDir, file), "utf8"), join("recipes", file)) as ReturnType<typeof parseRecipe> & {
      train?: TrainConfig;
      curate?: { seq_len: number };
    };
    const config = preset();
    const train = recipe.train!;
    const seqLen = recipe.curate!.seq_len;
    expect(recipe.model.path).toBeDefined();
    const plan = planLora(config, train.lora);
    expect(new Set(plan.modules.map((m) => m.layer)).size).toBe(config.num_hidden_layers);
    // A bf16 checkpoint whose tables can be read row by row, as planStorage sees a real download.
    const source = { dtype: () => "BF16" as const, fileRows: () => ({}) as TensorFileRows };
    const storage = planStorage(config, source, { baseDtype: recipe.model.base_dtype }, MACHINE, {
      name: "native",
      reason: "recipe check",
    });
    const { trainable, estimate: est } = estimateTraining(config, plan, train, seqLen, storage, "wasm");
    const g = (n: number) => `${(n / GIB).toFixed(1)} GiB`;
    console.log(
      `${file}: base ${storage.baseDtype} (Wᵀ ${storage.transposed}), estimated peak ${g(est.total)}: weights ${g(est.base)}, adapter + AdamW ${g(est.lora)}, activations ${g(est.activations)}, head ${g(est.head)}, runtime ${g(est.runtime)}; wasm heap ${g(est.backend)}; ${(trainable / 1e6).toFixed(1)}M trainable`,
    );
    expect(est.total).toBeLessThan(MACHINE - 2 * GIB);
    expect(est.backend).toBeLessThan(WASM_HEAP_LIMIT_BYTES);
  });
});
