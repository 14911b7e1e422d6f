// The recipe stages in the order `owntune run` executes them. Each issue that builds a stage adds
// its runner here; the recipe schema and `owntune schema` follow from this list.
import { curateStage } from "./curate.js";
import { exportStage } from "./export.js";
import { trainStage } from "./train.js";
import type { StageDef } from "./types.js";

export const stages: readonly StageDef[] = [
  curateStage as unknown as StageDef,
  trainStage as unknown as StageDef,
  exportStage as unknown as StageDef,
];
