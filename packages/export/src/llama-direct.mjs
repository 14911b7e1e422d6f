// @ts-check
// Log-probabilities from llama.cpp's own C API (libllama, as node-llama-cpp 3.21.1 ships it prebuilt),
// called through koffi in the verify worker. node-llama-cpp's per-position API hands over a sorted
// 262,144-entry distribution as a JS array and a Map (≈ 0.4 s a position on 2 cores); here each
// position's raw logits are read once and normalized in float64 (≈ 1 ms). Same library, same settings
// as the node-llama-cpp path (CPU, F32 KV cache, flash attention off, n_ubatch = n_batch = context,
// tokens as `tokenize(text, true)`): only the read-out differs. `directLlama` returns undefined when
// the library is missing or its structs are not laid out as below (checked against the documented
// defaults), and the worker falls back to node-llama-cpp.
import { existsSync } from "node:fs";
import { join } from "node:path";
import koffi from "koffi";

/** @typedef {{ tokens: number[], logprobs: number[] }} TextResult */

const GGML_TYPE_F32 = 0;
const FLASH_ATTN_DISABLED = 0;
const LOAD_MODE_NONE = 0; // read the file into memory, as node-llama-cpp does without useMmap
const LAZY_MODE_OFF = 0;

/** @type {any} */
let bound;

/** Binds libllama from `binDir` once per process; undefined when it cannot (with the reason in `why`). */
function bind(binDir, why) {
  if (bound !== undefined) return bound || undefined;
  bound = false;
  const path = join(binDir, "libllama.v0.4.0.so");
  if (process.platform !== "linux" || !existsSync(path)) {
    why.push(`no ${path}`);
    return undefined;
  }
  const ggml = koffi.load(join(binDir, "libggml.v0.4.0.so"));
  const lib = koffi.load(path);
  // llama.h of the release node-llama-cpp 3.21.1 builds (llama.cpp's v0.4.0 libraries).
  koffi.struct("owntune_llama_model_params", {
    devices: "void *",
    tensor_buft_overrides: "void *",
    n_gpu_layers: "int32_t",
    split_mode: "int32_t",
    load_mode: "int32_t",
    lazy_mode: "int32_t",
    main_gpu: "int32_t",
    tensor_split: "void *",
    progress_callback: "void *",
    progress_callback_user_data: "void *",
    kv_overrides: "void *",
    vocab_only: "bool",
    check_tensors: "bool",
    use_extra_bufts: "bool",
    no_host: "bool",
    no_alloc: "bool",
    load_mtp: "bool",
  });
  koffi.struct("owntune_llama_context_params", {
    n_ctx: "uint32_t",
    n_batch: "uint32_t",
    n_ubatch: "uint32_t",
    n_seq_max: "uint32_t",
    n_rs_seq: "uint32_t",
    n_outputs_max: "uint32_t",
    n_outputs_max_per_seq: "uint32_t",
    n_threads: "int32_t",
    n_threads_batch: "int32_t",
    ctx_type: "int32_t",
    rope_scaling_type: "int32_t",
    pooling_type: "int32_t",
    attention_type: "int32_t",
    flash_attn_type: "int32_t",
    rope_freq_base: "float",
    rope_freq_scale: "float",
    yarn_ext_factor: "float",
    yarn_attn_factor: "float",
    yarn_beta_fast: "float",
    yarn_beta_slow: "float",
    yarn_orig_ctx: "uint32_t",
    defrag_thold: "float",
    cb_eval: "void *",
    cb_eval_user_data: "void *",
    type_k: "int32_t",
    type_v: "int32_t",
    abort_callback: "void *",
    abort_callback_data: "void *",
    embeddings: "bool",
    offload_kqv: "bool",
    no_perf: "bool",
    op_offload: "bool",
    swa_full: "bool",
    kv_unified: "bool",
    samplers: "void *",
    n_samplers: "size_t",
    ctx_other: "void *",
  });
  koffi.struct("owntune_llama_batch", {
    n_tokens: "int32_t",
    token: "int32_t *",
    embd: "float *",
    pos: "int32_t *",
    n_seq_id: "int32_t *",
    seq_id: "int32_t **",
    logits: "int8_t *",
  });
  const logProto = koffi.proto("void owntune_llama_log(int level, const char *text, void *user)");
  const f = (/** @type {string} */ decl) => lib.func(decl);
  const api = {
    loadAll: ggml.func("void ggml_backend_load_all_from_path(const char *dir)"),
    backendInit: f("void llama_backend_init()"),
    logSet: f("void llama_log_set(owntune_llama_log *cb, void *user)"),
    modelDefaults: f("owntune_llama_model_params llama_model_default_params()"),
    contextDefaults: f("owntune_llama_context_params llama_context_default_params()"),
    loadModel: f("void *llama_model_load_from_file(const char *path, owntune_llama_model_params params)"),
    freeModel: f("void llama_model_free(void *model)"),
    initContext: f("void *llama_init_from_model(void *model, owntune_llama_context_params params)"),
    freeContext: f("void llama_free(void *ctx)"),
    vocab: f("void *llama_model_get_vocab(void *model)"),
    nTokens: f("int32_t llama_vocab_n_tokens(void *vocab)"),
    addBos: f("bool llama_vocab_get_add_bos(void *vocab)"),
    bos: f("int32_t llama_vocab_bos(void *vocab)"),
    isEog: f("bool llama_vocab_is_eog(void *vocab, int32_t token)"),
    tokenize: f(
      "int32_t llama_tokenize(void *vocab, const char *text, int32_t text_len, _Out_ int32_t *tokens, int32_t n_max, bool add_special, bool parse_special)",
    ),
    batchInit: f("owntune_llama_batch llama_batch_init(int32_t n_tokens, int32_t embd, int32_t n_seq_max)"),
    batchFree: f("void llama_batch_free(owntune_llama_batch batch)"),
    decode: f("int32_t llama_decode(void *ctx, owntune_llama_batch batch)"),
    logitsIth: f("float *llama_get_logits_ith(void *ctx, int32_t i)"),
    memory: f("void *llama_get_memory(void *ctx)"),
    memoryClear: f("void llama_memory_clear(void *mem, bool data)"),
    adapterInit: f("void *llama_adapter_lora_init(void *model, const char *path)"),
    adapterFree: f("void llama_adapter_lora_free(void *adapter)"),
    setAdapters: f("int32_t llama_set_adapters_lora(void *ctx, void **adapters, size_t n, float *scales)"),
    logProto,
  };
  // The struct layouts above are this release's: its documented defaults must read back as such.
  const m = api.modelDefaults();
  const c = api.contextDefaults();
  const layoutOk =
    m.n_gpu_layers === -1 &&
    m.main_gpu === 0 &&
    m.use_extra_bufts === true &&
    m.load_mtp === false &&
    c.n_ctx === 512 &&
    c.n_batch === 2048 &&
    c.n_ubatch === 512 &&
    c.n_seq_max === 1 &&
    c.n_outputs_max_per_seq === 1 &&
    c.yarn_ext_factor === -1 &&
    c.yarn_beta_slow === -1 &&
    c.defrag_thold === -1 &&
    c.type_k === 1 &&
    c.type_v === 1 &&
    c.offload_kqv === true &&
    c.no_perf === true &&
    c.swa_full === true &&
    c.kv_unified === false &&
    c.n_samplers === 0;
  if (!layoutOk) {
    why.push("libllama's parameter structs are not laid out as expected");
    return undefined;
  }
  api.loadAll(binDir);
  api.backendInit();
  bound = api;
  return api;
}

/**
 * Runs the verify request on libllama directly, or returns undefined to let the caller use node-llama-cpp.
 * @param {any} req the worker's request (no `generate`)
 */
export function directLlama(req) {
  /** @type {string[]} */
  const why = [];
  const api = req.binDir ? bind(req.binDir, why) : undefined;
  if (!api) return undefined;
  /** @type {string[]} */
  const logs = [];
  let pending = "";
  const onLog = koffi.register((/** @type {number} */ level, /** @type {string} */ text) => {
    // ggml_log_level: 3 WARN, 4 ERROR, 5 CONT (continues the previous line's level).
    if (level === 5 ? pending !== "" : level >= 3) pending += text;
    if (pending.endsWith("\n")) {
      if (logs.length < 200) logs.push(`${level === 4 ? "error" : "warn"}: ${pending.trim()}`);
      pending = "";
    }
  }, koffi.pointer(api.logProto));
  api.logSet(onLog, null);
  /** @type {any} */ let model = null;
  /** @type {any} */ let ctx = null;
  /** @type {any} */ let adapter = null;
  try {
    const mp = api.modelDefaults();
    mp.n_gpu_layers = 0;
    mp.load_mode = LOAD_MODE_NONE;
    mp.lazy_mode = LAZY_MODE_OFF;
    model = api.loadModel(req.modelPath, mp);
    if (!model) return { ok: false, stage: "load", error: "llama.cpp could not load the model", logs };
    const size = Math.min(req.contextSize ?? 512, 8192);
    const cp = api.contextDefaults();
    cp.n_ctx = size;
    cp.n_batch = size;
    cp.n_ubatch = size;
    cp.n_threads = cp.n_threads_batch = Math.max(1, req.threads ?? 1);
    cp.flash_attn_type = FLASH_ATTN_DISABLED;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.swa_full = false;
    ctx = api.initContext(model, cp);
    if (!ctx) return { ok: false, stage: "context", error: "llama.cpp could not create a context", logs };
    if (req.adapterPath) {
      adapter = api.adapterInit(model, req.adapterPath);
      if (!adapter) return { ok: false, stage: "context", error: `llama.cpp could not load the adapter ${req.adapterPath}`, logs };
      if (api.setAdapters(ctx, [adapter], 1, [req.adapterScale ?? 1]) !== 0)
        return { ok: false, stage: "context", error: "llama.cpp could not apply the adapter", logs };
    }
    const vocab = api.vocab(model);
    const nVocab = api.nTokens(vocab);
    const bos = api.bos(vocab);
    const addBos = api.addBos(vocab) && bos >= 0;
    /** @type {TextResult[]} */
    const results = [];
    for (const text of req.texts) {
      const bytes = Buffer.byteLength(text, "utf8");
      const out = new Int32Array(bytes + 8);
      const count = api.tokenize(vocab, text, bytes, out, out.length, false, true);
      if (count < 0) throw new Error("probe text too long");
      const body = Array.from(out.subarray(0, count));
      const ids = addBos ? [bos, ...body] : body;
      if (ids.length > size) throw new Error(`probe text of ${ids.length} tokens exceeds the context of ${size}`);
      api.memoryClear(api.memory(ctx), true);
      const batch = api.batchInit(ids.length, 0, 1);
      try {
        const n = ids.length;
        const view32 = (/** @type {any} */ ptr) => new Int32Array(koffi.view(ptr, 4 * n));
        view32(batch.token).set(ids);
        view32(batch.pos).set(ids.map((_, i) => i));
        view32(batch.n_seq_id).fill(1);
        new Int8Array(koffi.view(batch.logits, n)).fill(1);
        // llama_batch_init leaves each token's sequence-id array uninitialized: one sequence, id 0.
        for (let i = 0; i < n; i++) new Int32Array(koffi.view(koffi.decode(batch.seq_id, 8 * i, "void *"), 4))[0] = 0;
        batch.n_tokens = ids.length;
        const rc = api.decode(ctx, batch);
        if (rc !== 0) return { ok: false, stage: "run", error: `llama_decode returned ${rc}`, logs };
        const logprobs = [];
        for (let i = 0; i + 1 < ids.length; i++) {
          const logits = new Float32Array(koffi.view(api.logitsIth(ctx, i), 4 * nVocab));
          let max = -Infinity;
          for (let v = 0; v < nVocab; v++) if (logits[v] > max) max = logits[v];
          let sum = 0;
          for (let v = 0; v < nVocab; v++) sum += Math.exp(logits[v] - max);
          logprobs.push(logits[ids[i + 1]] - max - Math.log(sum));
        }
        results.push({ tokens: body, logprobs });
      } finally {
        api.batchFree(batch);
      }
    }
    const eogIds = req.eogCandidates ? req.eogCandidates.filter((/** @type {number} */ id) => api.isEog(vocab, id)) : undefined;
    return { ok: true, results, eogIds, logs, via: "libllama" };
  } finally {
    if (ctx) api.freeContext(ctx);
    if (adapter) api.adapterFree(adapter);
    if (model) api.freeModel(model);
    api.logSet(null, null);
    koffi.unregister(onLog);
  }
}
