// @ts-check
// Child process that runs llama.cpp as node-llama-cpp 3.21.1 ships it, for `verify` and samples: some
// inputs make llama.cpp abort its whole process (spec/gemma4.md §3.6, §10), so it never runs inside
// the caller. Fully offline: prebuilt binaries only, CPU, F32 KV cache, flash attention off.
// Log-probabilities come from libllama's logits directly (llama-direct.mjs) where it binds, else from
// node-llama-cpp's per-position probabilities; generation always goes through node-llama-cpp.
// Protocol: one JSON request on IPC, one JSON reply, then exit. Plain JS so it forks without a loader.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

/** @param {any} req */
async function run(req) {
  // Log-probabilities straight from libllama's logits where it binds (see llama-direct.mjs); generation,
  // and any library that does not bind, through node-llama-cpp.
  if (!req.generate && req.binDir && process.env.OWNTUNE_LLAMA_DIRECT !== "0") {
    const direct = await import("./llama-direct.mjs").then((m) => m.directLlama(req)).catch(() => undefined);
    if (direct) return direct;
  }
  /** @type {string[]} */
  const logs = [];
  const llama = await getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger: (level, message) => {
      if (logs.length < 200) logs.push(`${level}: ${message.trim()}`);
    },
  });
  let model;
  try {
    model = await llama.loadModel({ modelPath: req.modelPath, gpuLayers: 0 });
  } catch (e) {
    // llama.cpp's reason reaches the logger shortly after the rejection.
    await new Promise((r) => setTimeout(r, 600));
    return { ok: false, stage: "load", error: String(e && e.message ? e.message : e), logs };
  }
  const maxTokens = Math.max(8, ...req.texts.map((/** @type {string} */ t) => 4 * t.length + 8));
  let context;
  try {
    context = await model.createContext({
      contextSize: Math.min(req.contextSize ?? 512, 8192),
      batchSize: Math.min(req.contextSize ?? 512, 8192),
      threads: req.threads ?? 0,
      flashAttention: false,
      experimentalKvCacheKeyType: "F32",
      experimentalKvCacheValueType: "F32",
      ...(req.adapterPath ? { lora: { adapters: [{ filePath: req.adapterPath, scale: req.adapterScale ?? 1 }] } } : {}),
    });
  } catch (e) {
    await new Promise((r) => setTimeout(r, 600));
    return { ok: false, stage: "context", error: String(e && e.message ? e.message : e), logs };
  }
  const seq = context.getSequence();
  const results = [];
  for (const text of req.texts) {
    const body = Array.from(model.tokenize(text, true));
    const bos = model.tokens.bos;
    const ids = model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...body] : body;
    if (ids.length > maxTokens) throw new Error("probe text too long");
    await seq.clearHistory();
    const items = ids.map((t, i) => (i < ids.length - 1 ? [t, { generateNext: { probabilities: true } }] : t));
    const out = await seq.controlledEvaluate(/** @type {any} */ (items));
    const logprobs = [];
    for (let i = 0; i + 1 < ids.length; i++) {
      const probs = out[i]?.next?.probabilities;
      const p = probs?.get(ids[i + 1]) ?? 0;
      // node-llama-cpp normalizes with a float32 running sum over the vocabulary sorted by logit, which
      // drops the smallest terms (≈ 1e-3 of the mass on a 262,144-token vocabulary): renormalize in float64.
      let total = 0;
      if (probs) for (const q of probs.values()) total += q;
      logprobs.push(Math.log(p) - Math.log(total > 0 ? total : 1));
    }
    results.push({ tokens: body, logprobs });
  }
  // Greedy generation from a prompt (special tokens parsed; BOS prepended unless the text has it).
  let generated;
  if (req.generate) {
    const body = Array.from(model.tokenize(req.generate.prompt, true));
    const bos = model.tokens.bos;
    const prompt = model.tokens.shouldPrependBosToken && bos !== null && body[0] !== bos ? [bos, ...body] : body;
    await seq.clearHistory();
    /** @type {any[]} */
    const out = [];
    for await (const token of seq.evaluate(/** @type {any} */ (prompt), { temperature: 0 })) {
      if (model.isEogToken(token)) break;
      out.push(token);
      if (out.length >= req.generate.maxTokens) break;
    }
    generated = { tokens: out.map(Number), text: model.detokenize(out) };
  }
  // isEogToken is one native call per id: ask only about the candidates given (special and named tokens).
  const eogIds = req.eogCandidates
    ? req.eogCandidates.filter((/** @type {number} */ id) => model.isEogToken(/** @type {any} */ (id)))
    : undefined;
  await context.dispose();
  await model.dispose();
  await llama.dispose();
  return { ok: true, results, eogIds, generated, logs, via: "node-llama-cpp" };
}

process.once("message", (req) => {
  run(req).then(
    (reply) => process.send?.(reply, () => process.exit(0)),
    (e) => process.send?.({ ok: false, stage: "run", error: String(e && e.stack ? e.stack : e), logs: [] }, () => process.exit(0)),
  );
});
