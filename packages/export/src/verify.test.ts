// verify against llama.cpp on the tiny preset (every dense Gemma 4 feature, the real 262,144-token
// tokenizer): F32, Q8_0 and Q4_K_M exports, and an adapter GGUF with a non-zero random adapter, all
// within tolerance with identical token ids; and the tolerance discriminates: breaking any single
// model feature in our forward pass (the model's TEST-ONLY `ablate`) fails verify by a wide margin.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ABLATIONS, loadDefaultTokenizer, memoryTensorSource, type GemmaTokenizer } from "@owntune/model";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGguf } from "./export-gguf.js";
import { endOfGenerationIds } from "./gguf-tokenizer.js";
import type { QuantMix } from "./quant-mix.js";
import { forwardScore, ourScore } from "./score.js";
import { gemmaTokenizer, tinyModel } from "./testing/fixtures.js";
import { PROBE_TEXTS, verifyGguf, type VerifyReport } from "./verify.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-verify-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tiny = tinyModel(1);
/**
 * Two of the probe texts (prose, chat markup with special tokens): 43 positions. node-llama-cpp hands
 * over each position's full 262,144-entry distribution, which costs ~0.1–0.4 s a position here.
 */
const probes = [PROBE_TEXTS[0]!, PROBE_TEXTS[4]!];
let tokenizer: GemmaTokenizer;
const paths: Partial<Record<QuantMix, string>> = {};
const reports: Record<string, VerifyReport> = {};

beforeAll(async () => {
  tokenizer = await loadDefaultTokenizer();
  const files = await gemmaTokenizer();
  for (const mix of ["F32", "Q8_0", "Q4_K_M"] as const) {
    paths[mix] = join(dir, `tiny-${mix}.gguf`);
    await exportGguf({ config: tiny.config, source: tiny.source, tokenizer: files, mix, out: paths[mix]! });
  }
}, 300_000);

const encode = (text: string) => tokenizer.encode(text);

function summary(r: VerifyReport): string {
  return r.probes.map((p) => `${p.tokens} tok: max ${p.maxAbsDiff?.toExponential(2)} mean ${p.meanAbsDiff?.toExponential(2)} at ${p.worstPosition} (tol ${p.tolerance.toFixed(3)})${p.tokenMismatchAt !== null ? ` TOKENS DIFFER at ${p.tokenMismatchAt}` : ""}`).join("; ") + (r.llama.ok ? "" : ` llama: ${r.llama.error} ${r.llama.logs.join(" | ")}`);
}

describe.each(["F32", "Q8_0", "Q4_K_M"] as const)("verify on a %s export of the tiny preset", (mix) => {
  it("agrees with llama.cpp on token ids and log-probs, and the weights match the model's", { timeout: 300_000 }, async () => {
    // Quantized files on the chat probe alone (special tokens, 23 positions): CI time.
    const mixProbes = mix === "F32" ? probes : [PROBE_TEXTS[4]!];
    const r = await verifyGguf({ gguf: paths[mix]!, config: tiny.config, encode, score: ourScore, source: tiny.source, probes: mixProbes, out: join(dir, `verify-${mix}.json`) });
    reports[mix] = r;
    console.log(`${mix}: ${summary(r)}; weights ${r.weightCheck?.worst[0]?.tensor} ${r.weightCheck?.worst[0]?.relError.toExponential(2)}`);
    expect(r.llama.ok, summary(r)).toBe(true);
    expect(r.tokenization.mismatches, summary(r)).toBe(0);
    expect(r.logprobs.ok, summary(r)).toBe(true);
    expect(r.weightCheck?.ok).toBe(true);
    expect(r.ok).toBe(true);
    // The end-of-generation tokens llama.cpp reports are the ones the Modelfile stops on.
    expect(r.eogIds).toEqual(endOfGenerationIds(await gemmaTokenizer()));
    const written = JSON.parse(readFileSync(join(dir, `verify-${mix}.json`), "utf8")) as VerifyReport;
    expect(written.tolerance.reason).toBe(r.tolerance.reason);
    expect(written.probes).toHaveLength(mixProbes.length);
  });
});

// The adapter GGUF on both sides is checked in export-dir.test.ts (through the whole export stage).

describe("the tolerance discriminates", () => {
  it.each(ABLATIONS)("fails verify by a wide margin when our forward pass has %s", { timeout: 300_000 }, async (ablation) => {
    // llama.cpp's side does not change with our ablation: reuse the F32 run's reply.
    const llamaReply = reports.F32?.llamaReply;
    const r = await verifyGguf({ gguf: paths.F32!, config: tiny.config, encode, score: forwardScore({ ablate: { [ablation]: true } }), probes, llamaReply });
    const worst = r.logprobs.maxAbsDiff;
    const tol = Math.max(...r.probes.map((p) => p.tolerance));
    console.log(`${ablation}: max |Δ log p| ${worst.toFixed(4)} nats = ${(worst / tol).toFixed(1)}× the tolerance ${tol.toFixed(3)} (logit scale ${r.probes[0]!.maxLogit?.toFixed(1)})`);
    expect(r.logprobs.ok).toBe(false);
    expect(worst).toBeGreaterThan(3 * tol);
  });
});

describe("at soft-cap logit scale (final norm ×4: logits up to ~70 before the cap)", () => {
  it("still agrees within the scaled tolerance, and single-feature errors still fail by a wide margin", { timeout: 600_000 }, async () => {
    const weights = new Map(tiny.weights);
    weights.set("norm.weight", tiny.weights.get("norm.weight")!.map((v) => v * 4));
    const source = memoryTensorSource(tiny.config, weights);
    const path = join(dir, "tiny-large-logits-F32.gguf");
    await exportGguf({ config: tiny.config, source, tokenizer: await gemmaTokenizer(), mix: "F32", out: path });
    const large = [PROBE_TEXTS[4]!];
    const r = await verifyGguf({ gguf: path, config: tiny.config, encode, score: ourScore, probes: large });
    console.log(`large logits: ${summary(r)}; logit scale ${r.probes[0]!.maxLogit?.toFixed(1)}`);
    expect(r.probes[0]!.maxLogit).toBeGreaterThan(40);
    expect(r.ok, summary(r)).toBe(true);
    for (const ablation of ["fullLayersDefaultRope", "vFromNormedK"] as const) {
      const bad = await verifyGguf({ gguf: path, config: tiny.config, encode, score: forwardScore({ ablate: { [ablation]: true } }), probes: large, llamaReply: r.llamaReply });
      console.log(`large logits, ${ablation}: ${bad.logprobs.maxAbsDiff.toFixed(3)} nats = ${(bad.logprobs.maxAbsDiff / bad.probes[0]!.tolerance).toFixed(1)}× the tolerance`);
      expect(bad.logprobs.maxAbsDiff).toBeGreaterThan(3 * bad.probes[0]!.tolerance);
    }
  });
});
