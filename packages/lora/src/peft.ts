// PEFT LoRA adapters on disk: `adapter_config.json` + `adapter_model.safetensors` with PEFT's tensor
// names, read into and written from the in-memory `AdapterWeights` (adapter.ts). Shapes are
// checked against the base model's config, so an adapter for another model is a UserError naming
// the tensor. Reference: huggingface/peft LoraConfig, save_pretrained / get_peft_model_state_dict.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseConfig, UserError, withAtomicDir, withSafetensors, writeFileAtomic, writeSafetensors, type FloatDtype } from "@owntune/core";
import { expectedTensors, type Gemma4Config } from "@owntune/model";
import { z } from "zod";
import type { AdapterWeights, LoraPair } from "./adapter.js";

export const ADAPTER_CONFIG_FILE = "adapter_config.json";
export const ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors";

/** PEFT's prefix before the model's own names (`base_model.model.` + `model.layers.…`). */
const PEFT_PREFIX = "base_model.model.";
/** Text-model prefixes inside it: causal LM, or the language model of a multimodal checkpoint. */
const MODEL_PREFIXES = ["model.language_model.", "model."];

/**
 * The `adapter_config.json` fields this toolkit reads. PEFT adds keys with every release, so
 * unknown keys are ignored; fields whose other values we cannot honour are refused when read.
 */
export const adapterConfigSchema = z.object({
  peft_type: z.literal("LORA").default("LORA"),
  r: z.number().int().positive(),
  lora_alpha: z.number().positive(),
  target_modules: z
    .union([z.array(z.string()), z.string()])
    .nullable()
    .default(null),
  use_rslora: z.boolean().default(false),
  base_model_name_or_path: z.string().nullable().default(null),
  task_type: z.string().nullable().default("CAUSAL_LM"),
  bias: z.string().default("none"),
  use_dora: z.boolean().default(false),
  fan_in_fan_out: z.boolean().default(false),
  modules_to_save: z.array(z.string()).nullable().default(null),
  rank_pattern: z.record(z.string(), z.number()).default({}),
  alpha_pattern: z.record(z.string(), z.number()).default({}),
  lora_dropout: z.number().min(0).max(1).default(0),
  inference_mode: z.boolean().default(true),
});
export type AdapterConfig = z.output<typeof adapterConfigSchema>;

/** Parses `adapter_config.json` text; refuses PEFT features the exporter and trainer do not implement. */
export function parseAdapterConfig(text: string, file: string): AdapterConfig {
  const c = parseConfig(adapterConfigSchema, text, file);
  const refuse = (field: string, why: string) => {
    throw new UserError(why, { file, field, hint: "owntune reads plain LoRA adapters (PEFT LoraConfig defaults for these fields)" });
  };
  if (c.use_dora) refuse("use_dora", "DoRA adapters are not supported");
  if (c.bias !== "none") refuse("bias", `trained biases (bias: ${JSON.stringify(c.bias)}) are not supported; Gemma 4 has no biases`);
  if (c.fan_in_fan_out) refuse("fan_in_fan_out", "fan_in_fan_out is for GPT-2 Conv1D layers, not Gemma");
  if (c.modules_to_save && c.modules_to_save.length > 0)
    refuse("modules_to_save", `fully trained modules (${c.modules_to_save.join(", ")}) are not supported`);
  if (Object.keys(c.rank_pattern).length > 0) refuse("rank_pattern", "per-module ranks (rank_pattern) are not supported");
  if (Object.keys(c.alpha_pattern).length > 0) refuse("alpha_pattern", "per-module alphas (alpha_pattern) are not supported");
  return c;
}

/** PEFT's scaling: alpha/r, or alpha/√r with rsLoRA. */
export function loraScale(c: Pick<AdapterConfig, "r" | "lora_alpha" | "use_rslora">): number {
  return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}

/** `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` → [`layers.3.self_attn.q_proj`, "A"]. */
export function parsePeftTensorName(stored: string): { module: string; half: "A" | "B" } | undefined {
  if (!stored.startsWith(PEFT_PREFIX)) return undefined;
  let rest = stored.slice(PEFT_PREFIX.length);
  const prefix = MODEL_PREFIXES.find((p) => rest.startsWith(p));
  if (!prefix) return undefined;
  rest = rest.slice(prefix.length);
  const m = /^(.+)\.lora_(A|B)(?:\.default)?\.weight$/.exec(rest);
  return m ? { module: m[1]!, half: m[2] as "A" | "B" } : undefined;
}

/**
 * The PEFT name of one half of a pair. `modelPrefix` is where the text model sits in the base
 * checkpoint: `model.` (Gemma4ForCausalLM) or `model.language_model.` (Gemma4ForConditionalGeneration).
 */
export function peftTensorName(module: string, half: "A" | "B", modelPrefix = "model."): string {
  return `${PEFT_PREFIX}${modelPrefix}${module}.lora_${half}.weight`;
}

/** A PEFT adapter read from disk: its config and the weights as the model consumes them. */
export interface PeftAdapter {
  config: AdapterConfig;
  weights: AdapterWeights;
}

/**
 * Reads a PEFT adapter folder and checks every tensor against `base` (the model it will be applied
 * to): known module, `lora_A` [r, in] and `lora_B` [out, r] with the base weight's in/out.
 */
export async function readPeftAdapter(dir: string, base: Gemma4Config): Promise<PeftAdapter> {
  const configPath = join(dir, ADAPTER_CONFIG_FILE);
  const weightsPath = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(configPath))
    throw new UserError(`no ${ADAPTER_CONFIG_FILE} here`, {
      file: dir,
      hint: "point --adapter at a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)",
    });
  if (!existsSync(weightsPath)) {
    const bin = existsSync(join(dir, "adapter_model.bin"))
      ? "; it has adapter_model.bin (PyTorch pickle), which owntune does not read: re-save with safe_serialization=True"
      : "";
    throw new UserError(`no ${ADAPTER_WEIGHTS_FILE} here${bin}`, { file: dir });
  }
  const config = parseAdapterConfig(await readFile(configPath, "utf8"), configPath);
  const linears = new Map(
    expectedTensors(base)
      .filter((t) => t.role === "linear")
      .map((t) => [t.name.replace(/\.weight$/, ""), t.shape]),
  );
  const halves = new Map<string, { A?: Float32Array; B?: Float32Array; rank?: number }>();
  await withSafetensors(weightsPath, async (file) => {
    for (const [stored, entry] of file.entries) {
      const parsed = parsePeftTensorName(stored);
      if (!parsed) {
        const what = /lora_embedding_[AB]/.test(stored)
          ? "LoRA on embeddings is not supported"
          : "not a LoRA weight of a Gemma 4 text model";
        throw new UserError(`tensor ${stored}: ${what}`, { file: weightsPath });
      }
      const shape = linears.get(parsed.module);
      if (!shape)
        throw new UserError(`tensor ${stored}: the base model has no linear layer ${parsed.module}`, {
          file: weightsPath,
          hint: "is this adapter for another model?",
        });
      const [out, inn] = shape as [number, number];
      const want = parsed.half === "A" ? [config.r, inn] : [out, config.r];
      if (entry.shape.length !== 2 || entry.shape[0] !== want[0] || entry.shape[1] !== want[1]) {
        throw new UserError(
          `tensor ${stored} has shape [${entry.shape.join(", ")}], the base model and r=${config.r} want [${want.join(", ")}]`,
          {
            file: weightsPath,
            hint: "is this adapter for another model?",
          },
        );
      }
      const h = halves.get(parsed.module) ?? {};
      h[parsed.half] = await file.read(stored);
      halves.set(parsed.module, h);
    }
  });
  const pairs = new Map<string, LoraPair>();
  for (const [module, h] of halves) {
    const missing = !h.A ? "lora_A" : !h.B ? "lora_B" : undefined;
    if (missing) throw new UserError(`module ${module} has no ${missing}`, { file: weightsPath });
    const [out, inn] = linears.get(module)! as [number, number];
    pairs.set(module, { rank: config.r, inFeatures: inn, outFeatures: out, a: h.A!, b: h.B! });
  }
  if (pairs.size === 0) throw new UserError("the adapter holds no LoRA weights", { file: weightsPath });
  return { config, weights: { scale: loraScale(config), pairs } };
}

export interface WritePeftOptions {
  /** lora_alpha to record; default: derived from the weights' scale (scale·r, or scale·√r with rsLoRA). */
  alpha?: number;
  useRslora?: boolean;
  baseModel?: string | null;
  dtype?: FloatDtype;
  /** lora_dropout the adapter was trained with (recorded; it does not act at inference). */
  dropout?: number;
  /** Layers the adapter was restricted to (PEFT's layers_to_transform with layers_pattern "layers"). */
  layersToTransform?: readonly number[];
  /** Where the text model sits in the base checkpoint (see peftTensorName); default `model.`. */
  modelPrefix?: string;
}

/** Writes `weights` as a PEFT adapter folder (atomically: the folder appears complete or not at all). */
export async function writePeftAdapter(dir: string, weights: AdapterWeights, options: WritePeftOptions = {}): Promise<void> {
  await withAtomicDir(dir, (tmp) => writePeftFiles(tmp, weights, options));
}

/** Writes `adapter_config.json` and `adapter_model.safetensors` into an existing folder (each file atomically). */
export async function writePeftFiles(dir: string, weights: AdapterWeights, options: WritePeftOptions = {}): Promise<void> {
  const modules = [...weights.pairs.keys()].sort(compareModules);
  const ranks = new Set(modules.map((m) => weights.pairs.get(m)!.rank));
  if (ranks.size !== 1) throw new RangeError(`PEFT adapters have one rank; these pairs have ${[...ranks].join(", ")}`);
  const r = [...ranks][0]!;
  const useRslora = options.useRslora ?? false;
  const alpha = options.alpha ?? weights.scale * (useRslora ? Math.sqrt(r) : r);
  const config = {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    r,
    lora_alpha: alpha,
    target_modules: [...new Set(modules.map((m) => m.split(".").pop()!))].sort(),
    use_rslora: useRslora,
    lora_dropout: options.dropout ?? 0,
    bias: "none",
    use_dora: false,
    fan_in_fan_out: false,
    modules_to_save: null,
    rank_pattern: {},
    alpha_pattern: {},
    inference_mode: true,
    base_model_name_or_path: options.baseModel ?? null,
    ...(options.layersToTransform ? { layers_to_transform: [...options.layersToTransform], layers_pattern: "layers" } : {}),
  };
  const tensors = modules.flatMap((m) => {
    const p = weights.pairs.get(m)!;
    return [
      { name: peftTensorName(m, "A", options.modelPrefix), dtype: options.dtype ?? ("F32" as const), shape: [p.rank, p.inFeatures] },
      { name: peftTensorName(m, "B", options.modelPrefix), dtype: options.dtype ?? ("F32" as const), shape: [p.outFeatures, p.rank] },
    ];
  });
  await writeSafetensors(
    join(dir, ADAPTER_WEIGHTS_FILE),
    tensors,
    (_, i) => {
      const p = weights.pairs.get(modules[i >> 1]!)!;
      return i % 2 === 0 ? p.a : p.b;
    },
    { metadata: { format: "pt" } },
  );
  await writeFileAtomic(join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(config, null, 2) + "\n");
}

/** Module names in layer order, then by name. */
function compareModules(a: string, b: string): number {
  const la = Number(/^layers\.(\d+)\./.exec(a)?.[1] ?? -1);
  const lb = Number(/^layers\.(\d+)\./.exec(b)?.[1] ?? -1);
  return la !== lb ? la - lb : a < b ? -1 : a > b ? 1 : 0;
}
