// Which linears of which layers get a LoRA pair. Gemma 4 layers differ: KV-shared layers have no
// k_proj/v_proj of their own (they read an earlier layer's K/V), and full layers with k=v have no
// v_proj (V is the raw K projection). A target a layer lacks is skipped there, never created as a
// tensor that nothing reads. Reference: spec/gemma4.md §1.1, §3.4, §3.6.
import { UserError } from "@owntune/core";
import { expectedTensors, layerSpecs, type Gemma4Config } from "@owntune/model";
import type { LoraTargetModule } from "./adapter.js";
import { selectedLayers, type LoraConfig } from "./train-config.js";

const MLP_TARGETS: readonly LoraTargetModule[] = ["gate_proj", "up_proj", "down_proj"];

/** One module that gets a LoRA pair. */
export interface PlannedModule {
  /** HF module name without prefix: `layers.3.self_attn.q_proj`. */
  name: string;
  layer: number;
  target: LoraTargetModule;
  inFeatures: number;
  outFeatures: number;
}

/** A target a selected layer does not have, and why. */
export interface SkippedTarget {
  layer: number;
  target: LoraTargetModule;
  reason: "kv-shared" | "k-eq-v";
}

export interface LoraPlan {
  modules: PlannedModule[];
  skipped: SkippedTarget[];
  /** Layers in the selection (by index and type). */
  layers: number[];
}

/** Plans the adapter's modules for `config` (file/field locate errors in the training config). */
export function planLora(model: Gemma4Config, lora: LoraConfig, where: { file?: string; fieldPrefix?: string } = {}): LoraPlan {
  const field = (f: string) => (where.fieldPrefix ? `${where.fieldPrefix}.${f}` : f);
  const selection = selectedLayers(lora, model.num_hidden_layers);
  if (!(selection instanceof Set)) throw new UserError(selection.message, { file: where.file, field: field(selection.field) });
  const shapes = new Map(expectedTensors(model).map((t) => [t.name, t.shape]));
  const modules: PlannedModule[] = [];
  const skipped: SkippedTarget[] = [];
  const layers: number[] = [];
  for (const spec of layerSpecs(model)) {
    if (!selection.has(spec.index) || !lora.layer_types.includes(spec.sliding ? "sliding" : "full")) continue;
    layers.push(spec.index);
    for (const target of lora.targets as LoraTargetModule[]) {
      const block = MLP_TARGETS.includes(target) ? "mlp" : "self_attn";
      const name = `layers.${spec.index}.${block}.${target}`;
      const shape = shapes.get(name + ".weight");
      if (!shape) {
        if (!spec.kvShared && (target !== "v_proj" || spec.hasVProj)) throw new Error(`${name}: not in the model's tensor list`);
        skipped.push({ layer: spec.index, target, reason: spec.kvShared ? "kv-shared" : "k-eq-v" });
        continue;
      }
      modules.push({ name, layer: spec.index, target, outFeatures: shape[0]!, inFeatures: shape[1]! });
    }
  }
  if (modules.length === 0) {
    const why =
      layers.length === 0
        ? "no layer matches lora.layers and lora.layer_types"
        : `the selected layers have none of ${lora.targets.join(", ")}`;
    throw new UserError(`nothing to train: ${why}`, { file: where.file, field: field("lora") });
  }
  return { modules, skipped, layers };
}

/** `0-3, 7, 9-11`: sorted layer indices as ranges. */
export function formatLayers(layers: readonly number[]): string {
  const sorted = [...new Set(layers)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(", ");
}

/** One line per (targets, reason): `k_proj, v_proj on layers 15-34 (KV-shared: they read another layer's K/V)`. */
export function describeSkipped(skipped: readonly SkippedTarget[]): string[] {
  const byReason = new Map<string, { targets: Set<string>; layers: Set<number> }>();
  for (const s of skipped) {
    const key = s.reason;
    const entry = byReason.get(key) ?? { targets: new Set(), layers: new Set() };
    entry.targets.add(s.target);
    entry.layers.add(s.layer);
    byReason.set(key, entry);
  }
  const why = {
    "kv-shared": "KV-shared layers: they read an earlier layer's K/V",
    "k-eq-v": "k=v layers: V is the raw K projection",
  } as const;
  return [...byReason].map(
    ([reason, e]) => `${[...e.targets].join(", ")} on layers ${formatLayers([...e.layers])} (${why[reason as keyof typeof why]})`,
  );
}
