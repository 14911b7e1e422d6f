// `owntune inspect MODEL_DIR`: config shape and parameters, the weights (files, dtypes, prefix,
// skipped towers, whether they fit the config), tokenizer identity and chat template, generation config.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { formatBytes, isUserError, UserError } from "@owntune/core";
import { gemma3TokenizerWarning, loadTokenizer } from "@owntune/tokenizer";
import {
  countParameters,
  openCheckpoint,
  readGemma4Config,
  readGenerationConfig,
  SINGLE_WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
} from "@owntune/model";
import { formatCount, type Inspector } from "./types.js";

export const modelDirInspector: Inspector = {
  kind: "model directory",
  // The weights make a model folder; a missing config.json is then that folder's problem, said as such.
  matches: (path, stat) =>
    stat.isDirectory() && (existsSync(join(path, SINGLE_WEIGHTS_FILE)) || existsSync(join(path, WEIGHTS_INDEX_FILE))),
  async inspect(dir) {
    if (!existsSync(join(dir, "config.json"))) {
      throw new UserError("model folder without config.json: the weights are here, but not the config that says their shapes", {
        file: dir,
        hint: "copy config.json from where the weights came from",
      });
    }
    const config = await readGemma4Config(join(dir, "config.json"));
    const params = countParameters(config);
    const generation = await readGenerationConfig(dir);
    const checkpoint = await openCheckpoint(dir);
    let problems: string[] = [];
    const dtypes: Record<string, number> = {};
    try {
      for (const t of checkpoint.tensors.values()) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
      try {
        checkpoint.checkAgainst(config, join(dir, "config.json"));
      } catch (e) {
        if (!isUserError(e)) throw e;
        problems = e.format().split("\n");
      }
    } finally {
      await checkpoint.close();
    }
    const tokenizer = await loadTokenizer(dir, { eosTokenIds: generation?.eos_token_id, fallbackToDefault: true });
    const full = config.layer_types.filter((t) => t === "full_attention").length;
    const data = {
      path: dir,
      config: {
        layers: config.num_hidden_layers,
        full_attention_layers: full,
        hidden_size: config.hidden_size,
        intermediate_size: config.intermediate_size,
        heads: config.num_attention_heads,
        kv_heads: config.num_key_value_heads,
        head_dim: config.head_dim,
        global_head_dim: config.global_head_dim,
        sliding_window: config.sliding_window,
        kv_shared_layers: config.num_kv_shared_layers,
        per_layer_input: config.hidden_size_per_layer_input,
        vocab_size: config.vocab_size,
      },
      parameters: params,
      weights: {
        files: checkpoint.files.map((f) => f.slice(dir.length).replace(/^[\\/]/, "")),
        prefix: checkpoint.prefix,
        multimodal: checkpoint.multimodal,
        textTensors: checkpoint.tensors.size,
        textBytes: checkpoint.textBytes,
        dtypes,
        skippedTensors: checkpoint.skipped.length,
        matchesConfig: problems.length === 0,
        problems,
      },
      tokenizer: {
        ...tokenizer.identity,
        isDefaultGemma3: tokenizer.isDefaultGemma3,
        bosId: tokenizer.bosId,
        eosId: tokenizer.eosId,
        endOfGenerationIds: tokenizer.endOfGenerationIds,
        chatTemplate: tokenizer.chatTemplate?.source ?? null,
      },
      generationConfig: generation?.raw ?? null,
    };
    const tokenizerNote = gemma3TokenizerWarning(tokenizer);
    const lines = [
      `${dir}: Gemma 4 model, ${formatCount(params.total)} parameters (${formatCount(params.other)} without embeddings)`,
      `  layers ${config.num_hidden_layers} (${full} full attention), hidden ${config.hidden_size}, MLP ${config.intermediate_size}, ` +
        `heads ${config.num_attention_heads}/${config.num_key_value_heads} kv, head dim ${config.head_dim}/${config.global_head_dim}, ` +
        `window ${config.sliding_window}, KV-shared ${config.num_kv_shared_layers}, PLE ${config.hidden_size_per_layer_input}, vocab ${config.vocab_size}`,
      `  weights: ${data.weights.files.join(", ")} (${formatBytes(checkpoint.textBytes)} text, ${Object.entries(dtypes)
        .map(([d, n]) => `${d} ×${n}`)
        .join(", ")}), ` +
        `prefix "${checkpoint.prefix}"${checkpoint.multimodal ? `, multimodal: ${checkpoint.skipped.length} vision/audio tensors skipped` : ""}`,
      problems.length === 0
        ? "  weights match config.json"
        : `  weights do NOT match config.json:\n${problems.map((p) => `    ${p}`).join("\n")}`,
      `  tokenizer: ${tokenizer.identity.source === "default-gemma3" ? "none in the folder" : "tokenizer.json"} sha256 ${tokenizer.identity.sha256.slice(0, 12)}…, ` +
        `${tokenizer.vocabSize} entries, end of generation ${JSON.stringify(tokenizer.endOfGenerationIds)}, chat template: ${tokenizer.chatTemplate ? "yes" : "no"}`,
      ...(tokenizerNote ? [`  note: ${tokenizerNote}`] : []),
    ];
    return { kind: "model directory", data, lines };
  },
};
