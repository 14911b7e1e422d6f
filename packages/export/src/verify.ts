// `owntune verify`: llama.cpp (node-llama-cpp 3.21.1, in a child process, offline, CPU, F32 KV cache,
// flash attention off) against our own forward pass on the same GGUF. Three checks:
//  1. tokenization: the token ids both sides assign to each probe text (special tokens parsed);
//  2. log-probabilities: per position, log p(next token) from llama.cpp vs our forward pass run on
//     the GGUF's own (dequantized) weights with ggml's CPU rounding copied in (ggml-activations.ts)
//     — and the adapter on both sides when given — within bounds on the largest and the mean
//     difference set by what ggml's arithmetic leaves for that weight type (see VERIFY_TOLERANCES);
//  3. weights: each GGUF tensor against the model folder's (merged with the adapter when the export
//     merged it), within the error the type's rounding or quantization allows.
// Reference: design.md "The external oracle", spec/gemma4.md §10, spec/gguf.md §5.
import { writeFileAtomic } from "@owntune/core";
import { expectedTensors, type Gemma4Config, type TensorSource } from "@owntune/model";
import type { AdapterWeights } from "@owntune/lora";
import { ggufValue, type GgufHeader } from "./gguf-reader.js";
import { openGgufTensorSource } from "./gguf-source.js";
import { mergedRowBlocks } from "./merged.js";
import { EOG_TEXTS } from "./gguf-tokenizer.js";
import { runLlama, type LlamaReply } from "./llama-runner.js";
import { activationRounding } from "./ggml-activations.js";
import { GgmlType, ggmlTypeName } from "./quant/ggml-types.js";

/**
 * Probe texts: a document mixing prose, code, several scripts, emoji, whitespace runs and numbers
 * (96 positions with the Gemma tokenizer: position-dependent errors — RoPE, the sliding window —
 * need positions to show, and the mean bound needs them to average over), and chat-formatted text
 * whose special tokens both tokenizers must parse (19 positions). node-llama-cpp hands over each
 * position's whole 262,144-entry distribution, ~0.1–0.4 s a position on 2 cores, so there are few.
 */
export const PROBE_TEXTS: readonly string[] = [
  [
    "The quick brown fox jumps over the lazy dog. It was a bright cold day in April.",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
    "Grüße aus Köln! 東京は日本の首都です。 Привет, мир! مرحبا",
    "Emoji 🎉 and   spaces,\n\n\ttabs; 3.14159 and 1,024.",
  ].join("\n"),
  "<start_of_turn>user\nWhat is the capital of France?<end_of_turn>\n<start_of_turn>model\nParis.<end_of_turn>\n",
];

/**
 * Bounds on |Δ log p| per position (nats) between llama.cpp and our forward pass: `maxAbs` on each
 * probe's largest difference, `meanAbs` on the mean over every compared position of every probe, each
 * multiplied by s(L) = max(1, L/15), L the logit scale (largest |logit| before the soft-cap; ggml's
 * error grows with it: measured at L = 16–22 and at L = 77, s = 5.1, where it was 2.5–4.5× larger).
 *
 * Our forward pass copies ggml's CPU rounding bit for bit (ggml-activations.ts: the fp16-table GELU,
 * and each product's activations rounded to the weight type's vec_dot_type), so what is left is
 * float32 summation order. Where activations are rounded (every type but F32), a one-ulp difference
 * before the rounding sometimes flips a value by one rounding step, and a random model amplifies one
 * flip into differences at the positions after it; the coarser the step, the larger. Measured on the
 * tiny preset (random models: seeds 1–6 quantized, 1–3 otherwise), per s(L):
 *
 *   weights      ggml's leftover: max / mean      bounds: maxAbs / meanAbs
 *   F32          0.0017 / 0.00034                 0.01 / 0.002
 *   F16          0.008  / 0.0016                  0.1  / 0.02
 *   BF16         0.047  / 0.0094                  0.1  / 0.02
 *   quantized    0.23   / 0.037                   0.4  / 0.07
 *
 * Every single-feature model error (spec/gemma4.md §10, the model's ABLATIONS; the same size on
 * F32, Q8_0 and Q4_K_M files) measured ≥ 0.58 max and ≥ 0.133 mean on the document probe, and
 * ≥ 0.067 max, ≥ 0.019 mean on the chat probe alone (whose 19 positions are too few to tell a
 * position-dependent error from a flip in a quantized file).
 */
export const VERIFY_TOLERANCES = {
  float: {
    maxAbs: 0.01,
    meanAbs: 0.002,
    reason:
      "F32 weights: ggml's fp16 GELU table copied, float32 summation order left (measured ≤ 0.0017 max, ≤ 0.00034 mean per s(L); single-feature model errors ≥ 0.067 max, ≥ 0.019 mean); bounds ×s(L) = max(1, L/15), L the logit scale",
  },
  half: {
    maxAbs: 0.1,
    meanAbs: 0.02,
    reason:
      "F16/BF16 weights: ggml's fp16/bf16 activations and fp16 GELU table copied bit-exactly, float32 summation order flips a few of those roundings (measured ≤ 0.047 max, ≤ 0.0094 mean per s(L), BF16; single-feature model errors ≥ 0.58 max, ≥ 0.133 mean on the document probe); bounds ×s(L) = max(1, L/15), L the logit scale",
  },
  quantized: {
    maxAbs: 0.4,
    meanAbs: 0.07,
    reason:
      "quantized weights: ggml's 8-bit activations (Q8_0/Q8_K) and fp16 GELU table copied bit-exactly, float32 summation order flips a few roundings by one step, which a random model amplifies (measured ≤ 0.23 max, ≤ 0.037 mean per s(L); single-feature model errors ≥ 0.58 max, ≥ 0.133 mean); bounds ×s(L) = max(1, L/15), L the logit scale",
  },
} as const;
/** Logit scale (largest |logit| before the soft-cap) above which the tolerances grow in proportion. */
export const LOGIT_SCALE_REFERENCE = 15;

/** s(L): how much a tolerance grows at logit scale L. */
export function logitScaleFactor(maxLogit: number): number {
  return Math.max(1, maxLogit / LOGIT_SCALE_REFERENCE);
}

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
export type ScoreFn = (
  config: Gemma4Config,
  weights: TensorSource,
  adapter: AdapterWeights | undefined,
  ids: readonly number[][],
) => Promise<ScoreOutput[]>;

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
  /** The paths to record in the report when the files are read from elsewhere (an export folder still being built). */
  reportAs?: { gguf: string; adapterGguf?: string };
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
  /** Bound on maxAbsDiff: the type's maxAbs × s(maxLogit). */
  tolerance: number;
  /** Largest |logit| before the soft-cap on this probe (our forward pass): the logit scale. */
  maxLogit?: number;
}

export interface VerifyReport {
  gguf: string;
  adapterGguf: string | null;
  ok: boolean;
  /** Tolerance family of the matrices: "float" (all F32), "half" (F16/BF16, none quantized) or "quantized". */
  weights: string;
  tolerance: { maxAbs: number; meanAbs: number; reason: string; logitScaleReference: number };
  probes: ProbeReport[];
  tokenization: { ok: boolean; mismatches: number };
  /**
   * maxAbsDiff over all probes; meanAbsDiff over every compared position, against meanTolerance
   * (meanAbs × s of the largest logit scale); toleranceRatio: the largest ratio of a statistic to its
   * bound (each probe's max, and the mean), over 1 when outside tolerance.
   */
  logprobs: { ok: boolean; maxAbsDiff: number; meanAbsDiff: number; meanTolerance: number; toleranceRatio: number };
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

/** Which tolerance applies: by the coarsest activation rounding any matrix's products get in ggml. */
function weightFamily(types: Iterable<number>): keyof typeof VERIFY_TOLERANCES {
  let family: keyof typeof VERIFY_TOLERANCES = "float";
  for (const t of types) {
    const rounding = activationRounding(t);
    if (rounding.startsWith("q8")) return "quantized";
    if (rounding !== "none") family = "half";
  }
  return family;
}

/** Compares every GGUF tensor with the source's (merged) values, a block of rows at a time. */
async function checkWeights(
  ggufSource: Awaited<ReturnType<typeof openGgufTensorSource>>,
  o: VerifyOptions,
): Promise<NonNullable<VerifyReport["weightCheck"]>> {
  const results: Array<{ tensor: string; type: string; relError: number; bound: number; ok: boolean }> = [];
  for (const spec of expectedTensors(o.config)) {
    let maxDiff = 0;
    let sumSq = 0;
    let n = 0;
    for await (const { start, count, values: want } of mergedRowBlocks(o.source!, o.mergedAdapter, spec.name, spec.shape)) {
      const got = await ggufSource.readRows(spec.name, start, count);
      for (let i = 0; i < want.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(got[i]! - want[i]!));
        sumSq += want[i]! * want[i]!;
      }
      n += want.length;
    }
    const rms = Math.sqrt(sumSq / Math.max(1, n));
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
  const ourIds = probes.map((p) => o.encode(p));
  const maxContext = Math.max(...ourIds.map((ids) => ids.length)) + 8;
  const reply: LlamaReply =
    o.llamaReply ??
    (await runLlama({
      modelPath: o.gguf,
      adapterPath: o.adapterGguf,
      texts: [...probes],
      contextSize: Math.max(64, maxContext),
      eogCandidates: eogCandidates(ggufSource.header),
    }));
  const ours = await o.score(o.config, ggufSource, o.adapter, ourIds);
  let sum = 0;
  let count = 0;
  const reports: ProbeReport[] = probes.map((text, i) => {
    const mine = ourIds[i]!;
    const report: ProbeReport = {
      text,
      tokens: mine.length,
      tokenMismatchAt: null,
      maxAbsDiff: null,
      meanAbsDiff: null,
      worstPosition: null,
      tolerance: base.maxAbs,
    };
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
    let probeSum = 0;
    let worst = 0;
    for (let k = 0; k < a.length; k++) {
      const d = Math.abs(a[k]! - b[k]!);
      if (!(d <= max)) {
        max = d;
        worst = k;
      }
      probeSum += d;
    }
    sum += probeSum;
    count += a.length;
    report.maxAbsDiff = max;
    report.meanAbsDiff = probeSum / Math.max(1, a.length);
    report.worstPosition = worst;
    report.maxLogit = ours[i]!.maxLogit;
    report.tolerance = base.maxAbs * logitScaleFactor(ours[i]!.maxLogit);
    return report;
  });
  const tokOk = reply.ok && reports.every((r) => r.tokenMismatchAt === null);
  const compared = reports.filter((r) => r.maxAbsDiff !== null);
  const meanAbsDiff = count > 0 ? sum / count : Number.NaN;
  const meanTolerance = base.meanAbs * logitScaleFactor(Math.max(0, ...compared.map((r) => r.maxLogit!)));
  const toleranceRatio = Math.max(meanAbsDiff / meanTolerance, ...compared.map((r) => r.maxAbsDiff! / r.tolerance));
  const lpOk = reply.ok && compared.length === reports.length && toleranceRatio <= 1;
  const weightCheck = o.source ? await checkWeights(ggufSource, o) : null;
  const report: VerifyReport = {
    gguf: o.reportAs?.gguf ?? o.gguf,
    adapterGguf: (o.reportAs ? o.reportAs.adapterGguf : o.adapterGguf) ?? null,
    ok: tokOk && lpOk && (weightCheck?.ok ?? true),
    weights: family,
    tolerance: { maxAbs: base.maxAbs, meanAbs: base.meanAbs, reason: base.reason, logitScaleReference: LOGIT_SCALE_REFERENCE },
    probes: reports,
    tokenization: { ok: tokOk, mismatches: reports.filter((r) => r.tokenMismatchAt !== null).length },
    logprobs: { ok: lpOk, maxAbsDiff: Math.max(0, ...compared.map((r) => r.maxAbsDiff!)), meanAbsDiff, meanTolerance, toleranceRatio },
    weightCheck,
    llama: reply.ok ? { ok: true, logs: reply.logs } : { ok: false, error: `${reply.stage}: ${reply.error}`, logs: reply.logs },
    eogIds: reply.ok ? reply.eogIds : undefined,
  };
  if (o.out) await writeFileAtomic(o.out, JSON.stringify(report, null, 2) + "\n");
  return { ...report, llamaReply: reply };
}
