// Runs llama.cpp (node-llama-cpp 3.21.1) on a GGUF in a child process and returns its token ids and
// per-position log-probabilities. A native abort ends the child, not the caller. See llama-worker.mjs.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { defaultGgmlThreads, nodeLlamaCppBinDir } from "@owntune/ggml";

export interface LlamaRequest {
  modelPath: string;
  /** A LoRA adapter GGUF applied at `adapterScale` (default 1). */
  adapterPath?: string;
  adapterScale?: number;
  texts: string[];
  contextSize?: number;
  /** llama.cpp's threads (default: OWNTUNE_GGML_THREADS, else one per core, as our own ggml kernels). */
  threads?: number;
  /** Token ids to ask llama.cpp about: the reply's `eogIds` lists those it treats as end-of-generation. */
  eogCandidates?: number[];
  /** Greedy generation from this prompt (special tokens parsed), up to maxTokens or an end-of-generation token. */
  generate?: { prompt: string; maxTokens: number };
}

export interface LlamaTextResult {
  /** Token ids of the text (special tokens parsed), without the BOS llama.cpp prepends. */
  tokens: number[];
  /** log p(token i+1 | tokens ≤ i) for each position of [BOS, ...tokens], natural log. */
  logprobs: number[];
}

export type LlamaReply =
  | {
      ok: true;
      results: LlamaTextResult[];
      eogIds?: number[];
      generated?: { tokens: number[]; text: string };
      logs: string[];
      /** Where the log-probabilities came from: libllama's logits (llama-direct.mjs) or node-llama-cpp's probabilities. */
      via: "libllama" | "node-llama-cpp";
    }
  | { ok: false; stage: "load" | "context" | "run" | "crash"; error: string; logs: string[] };

const WORKER = fileURLToPath(new URL("./llama-worker.mjs", import.meta.url));

/** Evaluates `texts` with llama.cpp in a child process; never throws for llama.cpp failures (see `ok`). */
export function runLlama(req: LlamaRequest, timeoutMs = 300_000): Promise<LlamaReply> {
  return new Promise((resolve) => {
    // The worker is plain JS: no loader flags from a TS runner are needed (or wanted) in the child.
    const child = fork(WORKER, [], {
      execArgv: [],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: "true" },
    });
    let stderr = "";
    let reply: LlamaReply | undefined;
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.length < 20_000) stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("message", (m) => {
      reply = m as LlamaReply;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (reply) return resolve(reply);
      const why = signal ? `killed by ${signal}` : `exited with code ${code}`;
      resolve({ ok: false, stage: "crash", error: `llama.cpp's process ${why}`, logs: stderr.trim().split("\n").slice(-20) });
    });
    // ggml's thread pool spins while it waits: with more threads than idle cores (other processes
    // busy) one decode step took 0.7 s instead of 16 ms here. The knob that sizes our kernels sizes it.
    const bin = nodeLlamaCppBinDir();
    child.send({ ...req, threads: req.threads ?? defaultGgmlThreads(), binDir: "dir" in bin ? bin.dir : undefined });
  });
}
