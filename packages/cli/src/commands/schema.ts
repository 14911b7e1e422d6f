// `owntune schema`: the recipe JSON Schema, for editor completion and checking of YAML recipes.
import type { Command } from "commander";
import { recipeJsonSchema } from "../recipe.js";

export function registerSchema(program: Command): void {
  program
    .command("schema")
    .description("print the recipe JSON Schema (point your editor's YAML language server at it)")
    .action(() => {
      process.stdout.write(JSON.stringify(recipeJsonSchema(), null, 2) + "\n");
    });
}
