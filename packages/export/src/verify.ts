// `owntune verify`: llama.cpp (node-llama-cpp 3.21.1, in a child process, offline, CPU, F32 KV cache,
// flash attention off) against our own forward pass on the same GGUF. Three checks:
//  1. tokenization: the token ids both sides assign to each probe text (special tokens parsed);
//  2. log-probabilities: per position, log p(next token) from llama.cpp vs our forward pass run on
//     the GGUF's own (dequantized) weights — with the adapter on both sides when given — within a
//     tolerance set by ggml's precision for that weight type (see VERIFY_TOLERANCES);
//  3. weights: each GGUF tensor against the model folder's (merged with the adapter when the export
//     merged it), within the error the type's rounding or quantization allows.
// Reference: design.md "The external oracle", spec/gemma4.md §10, spec/gguf.md §5.
import { expectedTensors, writeFileAtomic, type AdapterWeights, type Gemma4Config, type TensorSource } from "@owntune/model";
import { mergeLora } from "@owntune/lora";
import { ggufValue, type GgufHeader } from "./gguf-reader.js";
import { openGgufTensorSource } from "./gguf-source.js";
import { EOG_TEXTS } from "./gguf-tokenizer.js";
import { runLlama, type LlamaReply } from "./llama-runner.js";
import { GgmlType, ggmlTypeName } from "./quant/ggml-types.js";

/**
 * Probe texts: prose, code, several scripts, emoji, whitespace runs, numbers, and chat-formatted
 * text whose special tokens both tokenizers must parse. Short (≈ 110 positions in all): node-llama-cpp
 * hands over each position's whole 262,144-entry distribution, ~0.1–0.4 s a position on 2 cores.
 */
export const PROBE_TEXTS: readonly string[] = [
  "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.",
  "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
  "Grüße aus Köln! 東京は日本の首都です。 Привет, мир! مرحبا",
  "Emoji 🎉 and   spaces,\n\n\ttabs; 3.14159 and 1,024.",
  "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\nParis.<end_of_turn>\n",
];

/**
 * Tolerance on the largest per-position |Δ log p| (nats). Both sides use the GGUF's own weights, so
 * what remains is ggml's CPU arithmetic, and it grows with the logit scale L (largest |logit| before
 * the soft-cap): measured on the tiny preset with F32 weights and its final norm scaled so L = 17,
 * 44, 69, the differences were 0.0067, 0.018, 0.028 nats (spec/gemma4.md §10: 0.05–0.08 on trained
 * models at soft-cap scale). So float files get 0.02 · max(1, L/15): 0.02 at L ≤ 15, 0.09 at L = 69,
 * while every single-feature model error measured 0.28–5.7 nats at L = 17 and 1.1–37 at L = 69.
 * Quantized weights: ggml also rounds every quantized matmul's activations to 8 bits; our side
 * emulates that (ggml-activations.ts) and measures how far the rounding moves its own log-probs
 * on these probes (E); ggml's rounding noise is of that size, so the tolerance is at least 3·E.
 */
export const VERIFY_TOLERANCES = {
  float: { maxAbs: 0.02, reason: "F32/F16/BF16 weights: ggml's fp16 GELU table and summation order, growing with the logit scale (measured 0.007 nats at L = 17, 0.028 at L = 69 on the tiny preset)" },
  quantized: {
    maxAbs: 0.02,
    reason: "quantized weights: as for float, plus ggml's 8-bit activations before each quantized matmul; per probe at least 3·E, E = how far that rounding (emulated) moves our own log-probs",
  },
} as const;
/** Multiple of the measured activation-rounding effect allowed for quantized files. */
export const ACTIVATION_ROUNDING_FACTOR = 3;
/** Logit scale (largest |logit| before the soft-cap) above which the float tolerance grows in proportion. */
export const LOGIT_SCALE_REFERENCE = 15;

/** Per-type bound on max|GGUF − source| / rms(source) for the weight check (rounding or quantization error, with room). */
const WEIGHT_TOLERANCE: Record<number, number> = {
  [GgmlType.F32]: 0,
  [GgmlType.F16]: 2 ** -8,
  [GgmlType.BF16]: 2 ** -5,
  [GgmlType.Q8_0]: 0.05,
  [GgmlType.Q6_K]: 0.15,
  [GgmlType.Q5_K]: 0.3,
  [GgmlType.Q5_0]: 0.3,
  [GgmlType.Q5_1]: 0.3,
  [GgmlType.Q4_K]: 0.6,
  [GgmlType.Q4_0]: 0.6,
};

/** What our forward pass says about one sequence. */
export interface ScoreOutput {
  /** log p(ids[t+1] | ids[≤t]) for t = 0 … n−2. */
  logprobs: number[];
  /** Largest |logit| before the soft-cap, over the sequence and the vocabulary (the logit scale). */
  maxLogit: number;
}

/** Scores token ids with our forward pass. */
export type ScoreFn = (config: Gemma4Config, weights: TensorSource, adapter: AdapterWeights | undefined, ids: readonly number[][]) => Promise<ScoreOutput[]>;

/** Our tokenizer: ids of a text with BOS first and special tokens parsed. */
export type EncodeFn = (text: string) => number[];

export interface VerifyOptions {
  gguf: string;
  config: Gemma4Config;
  encode: EncodeFn;
  score: ScoreFn;
  /** The model folder's weights, for the weight check (skipped when absent). */
  source?: TensorSource;
  /** Adapter applied on both sides: llama.cpp gets `adapterGguf`, our forward pass `adapter`. */
  adapter?: AdapterWeights;
  adapterGguf?: string;
  /** An adapter merged into the GGUF's weights: the weight check compares against W + scale·B·A. */
  mergedAdapter?: AdapterWeights;
  probes?: readonly string[];
  /** llama.cpp's reply for these probes from an earlier run on the same files (skips running it again). */
  llamaReply?: LlamaReply;
  /** Where verify.json goes (not written when absent). */
  out?: string;
}

export interface ProbeReport {
  text: string;
  tokens: number;
  /** First position where the token ids differ, or null. */
  tokenMismatchAt: number | null;
  ours?: number[];
  llama?: number[];
  maxAbsDiff: number | null;
  meanAbsDiff: number | null;
  /** Position (in the BOS-prefixed sequence) of the largest difference. */
  worstPosition: number | null;
  tolerance: number;
  /** Largest |logit| before the soft-cap on this probe (our forward pass): the logit scale. */
  maxLogit?: number;
  /** Quantized files: how far ggml's activation rounding (emulated) moves our log-probs here. */
  activationRoundingEffect?: number;
}

export interface VerifyReport {
  gguf: string;
  adapterGguf: string | null;
  ok: boolean;
  /** Type family of the matmul weights, with the tolerance and its reason. */
  weights: string;
  tolerance: { maxAbs: number; reason: string; logitScaleReference: number };
  probes: ProbeReport[];
  tokenization: { ok: boolean; mismatches: number };
  logprobs: { ok: boolean; maxAbsDiff: number; meanAbsDiff: number };
  weightCheck: { ok: boolean; checked: number; worst: Array<{ tensor: string; type: string; relError: number; bound: number }> } | null;
  llama: { ok: boolean; error?: string; logs: string[] };
  /** Token ids llama.cpp treats as end-of-generation (what the Modelfile's stop parameters must name). */
  eogIds?: number[];
  /** The raw llama.cpp reply (not written to verify.json), for reuse. */
  llamaReply?: LlamaReply;
}

/** Ids that may be end-of-generation in llama.cpp: every non-normal token and every token named in its list. */
function eogCandidates(h: GgufHeader): number[] {
  const tokens = (ggufValue(h, "tokenizer.ggml.tokens") ?? []) as string[];
  const types = (ggufValue(h, "tokenizer.ggml.token_type") ?? []) as number[];
  const out: number[] = [];
  for (let id = 0; id < tokens.length; id++) if (types[id] !== 1 || EOG_TEXTS.has(tokens[id]!)) out.push(id);
  return out;
}

/** Which tolerance applies: quantized if any matmul weight is quantized. */
function weightFamily(types: Iterable<number>): "float" | "quantized" {
  for (const t of types) if (t !== GgmlType.F32 && t !== GgmlType.F16 && t !== GgmlType.BF16) return "quantized";
  return "float";
}

/** Compares every GGUF tensor with the source's (merged) values. */
async function checkWeights(ggufSource: Awaited<ReturnType<typeof openGgufTensorSource>>, o: VerifyOptions): Promise<NonNullable<VerifyReport["weightCheck"]>> {
  const results: Array<{ tensor: string; type: string; relError: number; bound: number; ok: boolean }> = [];
  for (const spec of expectedTensors(o.config)) {
    const want0 = await o.source!.read(spec.name);
    const pair = o.mergedAdapter?.pairs.get(spec.name.replace(/\.weight$/, ""));
    const want = pair ? mergeLora(want0, pair, o.mergedAdapter!.scale) : want0;
    const got = await ggufSource.read(spec.name);
    let maxDiff = 0;
    let sumSq = 0;
    for (let i = 0; i < want.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
      sumSq += want[i]! * want[i]!;
    }
    const rms = Math.sqrt(sumSq / Math.max(1, want.length));
    const relError = rms > 0 ? maxDiff / rms : maxDiff;
    const type = ggufSource.ggmlType(spec.name);
    const bound = WEIGHT_TOLERANCE[type] ?? 1;
    results.push({ tensor: spec.name, type: ggmlTypeName(type), relError, bound, ok: relError <= bound });
  }
  results.sort((a, b) => b.relError / (b.bound || 1e-30) - a.relError / (a.bound || 1e-30));
  return { ok: results.every((r) => r.ok), checked: results.length, worst: results.slice(0, 5).map(({ ok: _, ...r }) => r) };
}

/** Runs the three checks; writes verify.json when `out` is set. Never throws for a mismatch: see `ok`. */
export async function verifyGguf(o: VerifyOptions): Promise<VerifyReport> {
  const probes = o.probes ?? PROBE_TEXTS;
  const ggufSource = await openGgufTensorSource(o.gguf);
  const family = weightFamily(ggufSource.header.tensors.filter((t) => t.ne.length >= 2 && t.ne[1]! > 1).map((t) => t.type));
  const base = VERIFY_TOLERANCES[family];
  const maxContext = Math.max(...probes.map((p) => o.encode(p).length)) + 8;
  const reply: LlamaReply =
    o.llamaReply ??
    (await runLlama({ modelPath: o.gguf, adapterPath: o.adapterGguf, texts: [...probes], contextSize: Math.max(64, maxContext), eogCandidates: eogCandidates(ggufSource.header) }));
  const ourIds = probes.map((p) => o.encode(p));
  const ours = await o.score(o.config, ggufSource, o.adapter, ourIds);
  // Quantized files: the same forward pass without the activation rounding, to measure its effect.
  const plain =
    family === "quantized"
      ? await o.score(o.config, { has: ggufSource.has, shape: ggufSource.shape, read: ggufSource.read, readRows: ggufSource.readRows } as TensorSource, o.adapter, ourIds)
      : undefined;
  const reports: ProbeReport[] = probes.map((text, i) => {
    const mine = ourIds[i]!;
    const report: ProbeReport = { text, tokens: mine.length, tokenMismatchAt: null, maxAbsDiff: null, meanAbsDiff: null, worstPosition: null, tolerance: base.maxAbs };
    if (!reply.ok) return report;
    const theirs = reply.results[i]!;
    // Our ids start with BOS; llama.cpp's token list is without it (it prepends BOS itself).
    const theirIds = [mine[0]!, ...theirs.tokens];
    const n = Math.max(mine.length, theirIds.length);
    for (let k = 0; k < n; k++) {
      if (mine[k] !== theirIds[k]) {
        report.tokenMismatchAt = k;
        report.ours = mine.slice(Math.max(0, k - 3), k + 5);
        report.llama = theirIds.slice(Math.max(0, k - 3), k + 5);
        break;
      }
    }
    if (report.tokenMismatchAt !== null) return report;
    const a = ours[i]!.logprobs;
    const b = theirs.logprobs;
    let max = 0;
    let sum = 0;
    let worst = 0;
    for (let k = 0; k < a.length; k++) {
      const d = Math.abs(a[k]! - b[k]!);
      if (!(d <= max)) {
        max = d;
        worst = k;
      }
      sum += d;
    }
    report.maxAbsDiff = max;
    report.meanAbsDiff = sum / Math.max(1, a.length);
    report.worstPosition = worst;
    report.maxLogit = ours[i]!.maxLogit;
    report.tolerance = base.maxAbs * Math.max(1, ours[i]!.maxLogit / LOGIT_SCALE_REFERENCE);
    if (plain) {
      const effect = Math.max(0, ...a.map((v, k) => Math.abs(v - plain[i]!.logprobs[k]!)));
      report.activationRoundingEffect = effect;
      report.tolerance = Math.max(report.tolerance, ACTIVATION_ROUNDING_FACTOR * effect);
    }
    return report;
  });
  const tokOk = reply.ok && reports.every((r) => r.tokenMismatchAt === null);
  const compared = reports.filter((r) => r.maxAbsDiff !== null);
  const lpOk = reply.ok && compared.length === reports.length && compared.every((r) => r.maxAbsDiff! <= r.tolerance);
  const weightCheck = o.source ? await checkWeights(ggufSource, o) : null;
  const report: VerifyReport = {
    gguf: o.gguf,
    adapterGguf: o.adapterGguf ?? null,
    ok: tokOk && lpOk && (weightCheck?.ok ?? true),
    weights: family,
    tolerance: { maxAbs: base.maxAbs, reason: base.reason, logitScaleReference: LOGIT_SCALE_REFERENCE },
    probes: reports,
    tokenization: { ok: tokOk, mismatches: reports.filter((r) => r.tokenMismatchAt !== null).length },
    logprobs: {
      ok: lpOk,
      maxAbsDiff: Math.max(0, ...compared.map((r) => r.maxAbsDiff!)),
      meanAbsDiff: compared.reduce((s, r) => s + r.meanAbsDiff!, 0) / Math.max(1, compared.length),
    },
    weightCheck,
    llama: reply.ok ? { ok: true, logs: reply.logs } : { ok: false, error: `${reply.stage}: ${reply.error}`, logs: reply.logs },
    eogIds: reply.ok ? reply.eogIds : undefined,
  };
  if (o.out) await writeFileAtomic(o.out, JSON.stringify(report, null, 2) + "\n");
  return { ...report, llamaReply: reply };
}
