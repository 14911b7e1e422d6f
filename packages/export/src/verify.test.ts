// verify against llama.cpp on the tiny preset (every dense Gemma 4 feature, the real 262,144-token
// tokenizer): F32, Q8_0 and Q4_K_M exports, and an adapter GGUF with a non-zero random adapter, all
// within tolerance with identical token ids; and the tolerance discriminates: breaking any single
// model feature in our forward pass (the model's TEST-ONLY `ablate`) fails verify by a wide margin.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ABLATIONS, loadDefaultTokenizer, type GemmaTokenizer } from "@owntune/model";
import { randomAdapter } from "@owntune/lora";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportAdapterGguf } from "./adapter-gguf.js";
import { exportGguf } from "./export-gguf.js";
import { openGgufTensorSource } from "./gguf-source.js";
import type { QuantMix } from "./quant-mix.js";
import { forwardScore, ourScore } from "./score.js";
import { gemmaTokenizer, tinyModel } from "./testing/fixtures.js";
import { PROBE_TEXTS, verifyGguf, type VerifyReport } from "./verify.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-verify-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tiny = tinyModel(1);
/** Three of the probe texts (prose, code, chat markup with special tokens): enough positions, CI-sized. */
const probes = [PROBE_TEXTS[0]!, PROBE_TEXTS[1]!, PROBE_TEXTS[4]!];
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
    const r = await verifyGguf({ gguf: paths[mix]!, config: tiny.config, encode, score: ourScore, source: tiny.source, probes, out: join(dir, `verify-${mix}.json`) });
    reports[mix] = r;
    console.log(`${mix}: ${summary(r)}; weights ${r.weightCheck?.worst[0]?.tensor} ${r.weightCheck?.worst[0]?.relError.toExponential(2)}`);
    expect(r.llama.ok, summary(r)).toBe(true);
    expect(r.tokenization.mismatches, summary(r)).toBe(0);
    expect(r.logprobs.ok, summary(r)).toBe(true);
    expect(r.weightCheck?.ok).toBe(true);
    expect(r.ok).toBe(true);
    const written = JSON.parse(readFileSync(join(dir, `verify-${mix}.json`), "utf8")) as VerifyReport;
    expect(written.tolerance.reason).toBe(r.tolerance.reason);
    expect(written.probes).toHaveLength(probes.length);
  });
});

describe("verify with an adapter GGUF", () => {
  it("applies a non-zero random adapter on both sides: it moves the log-probs and both sides agree", { timeout: 300_000 }, async () => {
    const adapter = randomAdapter(tiny.config, { rank: 4, alpha: 8, seed: 11, strength: 0.5 });
    const adapterPath = join(dir, "adapter.gguf");
    await exportAdapterGguf({ config: tiny.config, adapter, out: adapterPath });
    const r = await verifyGguf({ gguf: paths.F32!, config: tiny.config, encode, score: ourScore, adapter, adapterGguf: adapterPath, probes });
    console.log(`F32 + adapter: ${summary(r)}`);
    expect(r.ok, summary(r)).toBe(true);
    // How far the adapter moves our own log-probs: it must matter far more than the tolerance.
    const ids = probes.map(encode);
    const weights = await openGgufTensorSource(paths.F32!);
    const [withAdapter, without] = [await ourScore(tiny.config, weights, adapter, ids), await ourScore(tiny.config, weights, undefined, ids)];
    const moved = Math.max(...withAdapter.flatMap((lp, i) => lp.map((v, k) => Math.abs(v - without[i]![k]!))));
    console.log(`adapter moves log-probs by up to ${moved.toFixed(3)} nats`);
    expect(moved).toBeGreaterThan(10 * r.tolerance.maxAbs);
  });
});

describe("the tolerance discriminates", () => {
  it.each(ABLATIONS)("fails verify by a wide margin when our forward pass has %s", { timeout: 300_000 }, async (ablation) => {
    const r = await verifyGguf({ gguf: paths.F32!, config: tiny.config, encode, score: forwardScore({ ablate: { [ablation]: true } }), probes });
    const worst = r.logprobs.maxAbsDiff;
    const tol = Math.max(...r.probes.map((p) => p.tolerance));
    console.log(`${ablation}: max |Δ log p| ${worst.toFixed(4)} nats = ${(worst / tol).toFixed(1)}× the tolerance ${tol.toFixed(3)}`);
    expect(r.logprobs.ok).toBe(false);
    expect(worst).toBeGreaterThan(3 * tol);
  });
});
