export { buildProgram, main, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "./main.js";
export {
  loadRecipe,
  parseRecipe,
  parseSets,
  recipeJsonSchema,
  recipeSchema,
  resolveRecipePath,
  type LoadedRecipe,
  type Recipe,
} from "./recipe.js";
export { defaultStageDir, runRecipe, stageOutDir, type RunOptions, type RunReport } from "./run.js";
export type { StageContext, StageDef, StageName, StageResult } from "./stages/types.js";
