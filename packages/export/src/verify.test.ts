// verify against llama.cpp on the tiny preset (every dense Gemma 4 feature, the real 262,144-token
// tokenizer): F32, BF16, Q8_0 and Q4_K_M exports agree within tolerance with identical token ids, and
// the tolerance discriminates on F32, Q8_0 and Q4_K_M: breaking any single model feature in our
// forward pass (the model's TEST-ONLY `ablate`) fails verify by a clear margin. llama.cpp runs once
// per file (its reply is reused: our ablation does not change its side); our model loads once per file.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadDefaultTokenizer, type GemmaTokenizer } from "@owntune/tokenizer";
import { ABLATIONS, memoryTensorSource } from "@owntune/model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGguf } from "./export-gguf.js";
import { openGgufTensorSource } from "./gguf-source.js";
import { endOfGenerationIds } from "./gguf-tokenizer.js";
import type { QuantMix } from "./quant-mix.js";
import { loadScorer, ourScore, type Scorer } from "./score.js";
import { gemmaTokenizer, tinyModel } from "./testing/fixtures.js";
import { PROBE_TEXTS, verifyGguf, type ScoreFn, type VerifyReport } from "./verify.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-verify-"));
const tiny = tinyModel(1);
const [DOCUMENT, CHAT] = PROBE_TEXTS as [string, string];
const MIXES = ["F32", "BF16", "Q8_0", "Q4_K_M"] as const;
type Mix = (typeof MIXES)[number];
/** Files whose discrimination is tested (BF16's bounds lie between F32's and the quantized ones'). */
const ABLATED: readonly Mix[] = ["F32", "Q8_0", "Q4_K_M"];
/**
 * Probes per file (node-llama-cpp hands over a 262,144-entry distribution per position: CI time).
 * Quantized files get the document (96 positions: their mean bound needs the positions, and
 * position-dependent errors show late); F32's bounds are tight enough for the chat probe (19).
 */
const PROBES: Record<Mix, string[]> = { F32: [CHAT], BF16: [CHAT], Q8_0: [DOCUMENT], Q4_K_M: [DOCUMENT] };
/**
 * An ablation must break at least one bound by this factor (measured: ≥ 16× on F32, ≥ 2.0× on the
 * quantized files, where vFromNormedK — V from K after k_norm, which differs only by k_norm's spread —
 * is the smallest error; ggml's flips leave ~1.9× headroom below the bounds there).
 */
const CLEAR_MARGIN = 1.5;

let tokenizer: GemmaTokenizer;
const paths = {} as Record<Mix, string>;
const reports = {} as Record<Mix, VerifyReport>;
const scorers = {} as Record<Mix, Scorer>;
const margins: Record<string, Partial<Record<Mix, number>>> = {};
const encode = (text: string) => tokenizer.encode(text);

beforeAll(async () => {
  tokenizer = await loadDefaultTokenizer();
  const files = await gemmaTokenizer();
  for (const mix of MIXES) {
    paths[mix] = join(dir, `tiny-${mix}.gguf`);
    await exportGguf({ config: tiny.config, source: tiny.source, tokenizer: files, mix: mix as QuantMix, out: paths[mix] });
    // Our model on the file's weights, loaded once for the agreement check and every ablation.
    const scorer = (scorers[mix] = await loadScorer(tiny.config, await openGgufTensorSource(paths[mix]), undefined));
    const score: ScoreFn = async (_config, _weights, _adapter, ids) => scorer.score(ids);
    reports[mix] = await verifyGguf({
      gguf: paths[mix],
      config: tiny.config,
      encode,
      score,
      source: tiny.source,
      probes: PROBES[mix],
      out: join(dir, `verify-${mix}.json`),
    });
  }
}, 600_000);

afterAll(() => {
  for (const s of Object.values(scorers)) s.dispose();
  rmSync(dir, { recursive: true, force: true });
  const rows = Object.entries(margins).map(
    ([a, m]) => `${a.padEnd(28)} ${ABLATED.map((x) => (m[x] === undefined ? "—" : `${m[x]!.toFixed(1)}×`).padStart(8)).join("")}`,
  );
  if (rows.length)
    console.log(
      `verify: largest statistic ÷ its bound, per ablation:\n${"".padEnd(28)} ${ABLATED.map((x) => x.padStart(8)).join("")}\n${rows.join("\n")}`,
    );
});

function summary(r: VerifyReport): string {
  const probes = r.probes.map(
    (p) =>
      `${p.tokens} tok: max ${p.maxAbsDiff?.toFixed(4)} (tol ${p.tolerance.toFixed(3)}) mean ${p.meanAbsDiff?.toFixed(4)} at ${p.worstPosition}${p.tokenMismatchAt !== null ? ` TOKENS DIFFER at ${p.tokenMismatchAt}` : ""}`,
  );
  const lp = r.logprobs;
  return `${probes.join("; ")}; mean ${lp.meanAbsDiff.toFixed(4)} (tol ${lp.meanTolerance.toFixed(4)}), ratio to tolerance ${lp.toleranceRatio.toFixed(2)}${r.llama.ok ? "" : ` llama: ${r.llama.error} ${r.llama.logs.join(" | ")}`}`;
}

describe.each(MIXES)("verify on a %s export of the tiny preset", (mix) => {
  it("agrees with llama.cpp on token ids and log-probs, and the weights match the model's", async () => {
    const r = reports[mix];
    console.log(
      `${mix}: ${summary(r)}; logit scale ${r.probes[0]!.maxLogit?.toFixed(1)}; weights ${r.weightCheck?.worst[0]?.tensor} ${r.weightCheck?.worst[0]?.relError.toExponential(2)}`,
    );
    expect(r.llama.ok, summary(r)).toBe(true);
    expect(r.tokenization.mismatches, summary(r)).toBe(0);
    expect(r.logprobs.ok, summary(r)).toBe(true);
    expect(r.weightCheck?.ok).toBe(true);
    expect(r.ok).toBe(true);
    expect(r.weights).toBe({ F32: "float", BF16: "half", Q8_0: "quantized", Q4_K_M: "quantized" }[mix]);
    // The end-of-generation tokens llama.cpp reports are the ones the Modelfile stops on.
    expect(r.eogIds).toEqual(endOfGenerationIds(await gemmaTokenizer()));
    const written = JSON.parse(readFileSync(join(dir, `verify-${mix}.json`), "utf8")) as VerifyReport;
    expect(written.tolerance.reason).toBe(r.tolerance.reason);
    expect(written.probes).toHaveLength(PROBES[mix].length);
  });
});

describe.each(ABLATED)("the tolerance on a %s export discriminates", (mix) => {
  it.each(ABLATIONS)("fails by a clear margin when our forward pass has %s", async (ablation) => {
    // llama.cpp's side does not change with our ablation: reuse the file's reply.
    const scores = scorers[mix].score(PROBES[mix].map(encode), { [ablation]: true });
    const r = await verifyGguf({
      gguf: paths[mix],
      config: tiny.config,
      encode,
      score: async () => scores,
      probes: PROBES[mix],
      llamaReply: reports[mix].llamaReply,
    });
    (margins[ablation] ??= {})[mix] = r.logprobs.toleranceRatio;
    console.log(`${mix} ${ablation}: ${summary(r)}`);
    expect(r.logprobs.ok).toBe(false);
    expect(r.ok).toBe(false);
    expect(r.logprobs.toleranceRatio).toBeGreaterThan(CLEAR_MARGIN);
  });
});

// The adapter GGUF on both sides is checked in export-dir.test.ts (through the whole export stage).

describe("at soft-cap logit scale (final norm ×4: logits up to ~70 before the cap)", () => {
  it("still agrees within the scaled tolerance, and single-feature errors still fail by a clear margin", { timeout: 600_000 }, async () => {
    const weights = new Map(tiny.weights);
    weights.set(
      "norm.weight",
      tiny.weights.get("norm.weight")!.map((v) => v * 4),
    );
    const source = memoryTensorSource(tiny.config, weights);
    const path = join(dir, "tiny-large-logits-F32.gguf");
    await exportGguf({ config: tiny.config, source, tokenizer: await gemmaTokenizer(), mix: "F32", out: path });
    const r = await verifyGguf({ gguf: path, config: tiny.config, encode, score: ourScore, probes: [CHAT] });
    console.log(`large logits: ${summary(r)}; logit scale ${r.probes[0]!.maxLogit?.toFixed(1)}`);
    expect(r.probes[0]!.maxLogit).toBeGreaterThan(40);
    expect(r.ok, summary(r)).toBe(true);
    const scorer = await loadScorer(tiny.config, await openGgufTensorSource(path), undefined);
    try {
      for (const ablation of ["fullLayersDefaultRope", "vFromNormedK"] as const) {
        const scores = scorer.score([encode(CHAT)], { [ablation]: true });
        const bad = await verifyGguf({
          gguf: path,
          config: tiny.config,
          encode,
          score: async () => scores,
          probes: [CHAT],
          llamaReply: r.llamaReply,
        });
        console.log(`large logits, ${ablation}: ${summary(bad)}`);
        expect(bad.logprobs.toleranceRatio).toBeGreaterThan(CLEAR_MARGIN);
      }
    } finally {
      scorer.dispose();
    }
  });
});
