// What `score` and `generate` share: pick and announce the backend, load a model folder and an optional
// PEFT adapter, and put them on the backend.
import type { GemmaTokenizer } from "@owntune/tokenizer";
import {
  describeBackend,
  describeStorage,
  initBackend,
  loadGemma4,
  loadModelDir,
  parseBaseDtype,
  parseKernelName,
  selectKernels,
  type BackendInfo,
  type Gemma4Model,
  type LoraLayers,
} from "@owntune/model";
import { disposeLora, loraTensorsFrom, readPeftAdapter } from "@owntune/lora";
import type { Command } from "commander";
import type { CommandIO } from "../cli-io.js";

export interface ModelSession {
  backend: BackendInfo;
  model: Gemma4Model;
  tokenizer: GemmaTokenizer;
  lora: LoraLayers | undefined;
  dispose(): void;
}

/** Adds the options every model-running command takes. */
export function modelOptions(cmd: Command): Command {
  return cmd
    .requiredOption("--model <dir>", "model folder (Hugging Face layout: config.json, *.safetensors, tokenizer.json)")
    .option("--adapter <dir>", "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors)")
    .option(
      "--backend <name>",
      "force a TensorFlow.js backend: tfjs-node, wasm or cpu (default: OWNTUNE_BACKEND, else the first that loads)",
    )
    .option(
      "--kernels <name>",
      "kernels for the base weights: native (ggml) or tfjs (default: OWNTUNE_KERNELS, else native when ggml loads)",
    )
    .option(
      "--base-dtype <type>",
      "hold base weights as f32, bf16, q8_0, q4_0 or q4_k (default: auto, f32 while it fits in memory, else bf16)",
    );
}

/** The flags every model-running command takes. */
export interface ModelFlags {
  model: string;
  adapter?: string;
  backend?: string;
  kernels?: string;
  baseDtype?: string;
}

/**
 * Starts the backend, loads the model (for inference: no input gradients through the base) and adapter;
 * the backend and the kernels are announced on stderr, even under --json.
 */
export async function openModel(io: CommandIO, flags: ModelFlags): Promise<ModelSession> {
  const kernels = flags.kernels === undefined ? undefined : parseKernelName(flags.kernels);
  const baseDtype = flags.baseDtype === undefined ? undefined : parseBaseDtype(flags.baseDtype);
  if (kernels === "native") selectKernels("native"); // a forced native that cannot start fails before anything else
  const backend = await initBackend({ backend: flags.backend });
  process.stderr.write(`backend: ${describeBackend(backend)}\n`);
  const dir = await loadModelDir(flags.model);
  for (const w of dir.warnings) io.log(`warning: ${w}`);
  let model: Gemma4Model;
  try {
    model = await loadGemma4(dir.config, dir.checkpoint, { progress: io.progress, kernels, baseDtype, transposed: "none" });
  } finally {
    await dir.checkpoint.close();
  }
  process.stderr.write(`kernels: ${describeStorage(model.storage)}\n`);
  let lora: LoraLayers | undefined;
  if (flags.adapter !== undefined) {
    try {
      const adapter = await readPeftAdapter(flags.adapter, dir.config);
      lora = loraTensorsFrom(adapter.weights.pairs, adapter.weights.scale);
      io.log(`adapter: ${adapter.weights.pairs.size} LoRA pairs, r=${adapter.config.r}, scale ${adapter.weights.scale}`);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  return {
    backend,
    model,
    tokenizer: dir.tokenizer,
    lora,
    dispose() {
      if (lora) disposeLora(lora);
      model.dispose();
    },
  };
}
