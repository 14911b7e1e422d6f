// The verify worker's two read-outs of llama.cpp agree: log-probabilities from libllama's logits
// (llama-direct.mjs, what verify uses) and from node-llama-cpp's own per-position probabilities (the
// fallback), on the same GGUF, the same texts and the same adapter; so do the tokens and the
// end-of-generation ids. node-llama-cpp normalizes in float32: the two differ by ~1e-6.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportGguf } from "./export-gguf.js";
import { runLlama, type LlamaReply, type LlamaRequest } from "./llama-runner.js";
import { gemmaTokenizer, tinyModel } from "./testing/fixtures.js";
import { PROBE_TEXTS } from "./verify.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-llama-runner-"));
const gguf = join(dir, "tiny-Q8_0.gguf");

beforeAll(async () => {
  const tiny = tinyModel(2);
  await exportGguf({ config: tiny.config, source: tiny.source, tokenizer: await gemmaTokenizer(), mix: "Q8_0", out: gguf });
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function bothWays(req: LlamaRequest): Promise<[Extract<LlamaReply, { ok: true }>, Extract<LlamaReply, { ok: true }>]> {
  const direct = await runLlama(req);
  const before = process.env.OWNTUNE_LLAMA_DIRECT;
  process.env.OWNTUNE_LLAMA_DIRECT = "0"; // the child inherits it
  try {
    const viaLibrary = await runLlama(req);
    if (!direct.ok || !viaLibrary.ok) throw new Error(JSON.stringify([direct, viaLibrary]).slice(0, 2000));
    return [direct, viaLibrary];
  } finally {
    if (before === undefined) delete process.env.OWNTUNE_LLAMA_DIRECT;
    else process.env.OWNTUNE_LLAMA_DIRECT = before;
  }
}

describe("llama.cpp's log-probabilities", () => {
  it("are the same from libllama's logits as from node-llama-cpp's probabilities", { timeout: 300_000 }, async () => {
    const [direct, nlc] = await bothWays({
      modelPath: gguf,
      texts: [PROBE_TEXTS[1]!, "Grüße aus Köln! 3.14159"],
      contextSize: 256,
      eogCandidates: [0, 1, 2, 106, 212],
    });
    expect(direct.via).toBe("libllama");
    expect(nlc.via).toBe("node-llama-cpp");
    expect(direct.eogIds).toEqual(nlc.eogIds);
    expect(direct.results.map((r) => r.tokens)).toEqual(nlc.results.map((r) => r.tokens));
    let worst = 0;
    direct.results.forEach((r, t) => r.logprobs.forEach((lp, i) => (worst = Math.max(worst, Math.abs(lp - nlc.results[t]!.logprobs[i]!)))));
    console.log(
      `libllama vs node-llama-cpp: max |Δ log p| ${worst.toExponential(2)} over ${direct.results.reduce((n, r) => n + r.logprobs.length, 0)} positions`,
    );
    expect(worst).toBeLessThan(1e-5);
    expect(direct.results.every((r) => r.logprobs.every((lp) => Number.isFinite(lp) && lp < 0))).toBe(true);
  });

  it("name a file llama.cpp cannot load, with llama.cpp's reason", { timeout: 120_000 }, async () => {
    const reply = await runLlama({ modelPath: join(dir, "missing.gguf"), texts: ["hello"] });
    expect(reply.ok).toBe(false);
    if (!reply.ok) {
      expect(reply.stage).toBe("load");
      expect(reply.logs.join("\n")).toMatch(/missing\.gguf/);
    }
  });
});
