// `owntune generate --model DIR [--adapter DIR] --prompt TEXT [--chat] [--max-tokens N] [--temperature T]
// [--top-k K] [--top-p P] [--seed S]`: continues a prompt with the hybrid KV cache, streaming the text.
import { UserError } from "@owntune/core";
import { generate } from "@owntune/model";
import type { Command } from "commander";
import { commandIO, intFlag, numberFlag } from "../cli-io.js";
import { modelOptions, openModel, type ModelFlags } from "./model-session.js";

interface GenerateFlags extends ModelFlags {
  prompt: string;
  chat?: boolean;
  maxTokens: string;
  temperature: string;
  topK?: string;
  topP?: string;
  seed?: string;
}

export function registerGenerate(program: Command): void {
  modelOptions(program.command("generate"))
    .description("generate a continuation of a prompt (greedy by default; sampled with --temperature)")
    .requiredOption("--prompt <text>", "the prompt (BOS is added)")
    .option("--chat", "wrap the prompt as a user turn with the model's chat template and answer as the model")
    .option("--max-tokens <n>", "most tokens to generate", "256")
    .option("--temperature <t>", "0 = greedy; otherwise sample from softmax(logits / t)", "0")
    .option("--top-k <k>", "sample only among the k most likely tokens")
    .option("--top-p <p>", "sample only among the most likely tokens whose probability reaches p")
    .option("--seed <s>", "seed of the sampling stream (default: random, printed)")
    .action(async (flags: GenerateFlags, cmd: Command) => {
      const io = commandIO(cmd);
      const maxTokens = intFlag("--max-tokens", flags.maxTokens, 1)!;
      const temperature = numberFlag(flags.temperature, "--temperature", (n) => n >= 0, "a number ≥ 0");
      const topK = intFlag("--top-k", flags.topK, 1);
      const topP = flags.topP === undefined ? undefined : numberFlag(flags.topP, "--top-p", (n) => n > 0 && n <= 1, "a number in (0, 1]");
      const seed = intFlag("--seed", flags.seed, 0, 2 ** 32 - 1);
      const session = await openModel(io, flags);
      try {
        const { tokenizer, model } = session;
        const text = flags.chat
          ? tokenizer.applyChatTemplate([{ role: "user", content: flags.prompt }], { addGenerationPrompt: true })
          : flags.prompt;
        const prompt = tokenizer.encode(text);
        const context = model.config.max_position_embeddings;
        if (prompt.length >= context) {
          throw new UserError(
            `the prompt is ${prompt.length} tokens, the model's context is ${context} (max_position_embeddings) with room for at least one new token`,
            { field: "--prompt", hint: "shorten the prompt" },
          );
        }
        // Past the context nothing more can come; the default (256) stops there, an explicit value is an error.
        if (maxTokens > context && cmd.getOptionValueSource("maxTokens") !== "default") {
          throw new UserError(`${maxTokens} is more than the model's context of ${context} tokens (max_position_embeddings)`, {
            field: "--max-tokens",
          });
        }
        const beyond = prompt.find((id) => id >= model.config.vocab_size);
        if (beyond !== undefined)
          throw new UserError(`the prompt contains token ${beyond}, past the model's vocab_size ${model.config.vocab_size}`, {
            field: "--prompt",
          });
        const stopIds = tokenizer.endOfGenerationIds;
        // Stream: decode everything so far and print what is new (a character may span several tokens).
        let shown = "";
        const ids: number[] = [];
        const result = await generate(model, prompt, {
          maxTokens,
          temperature,
          topK,
          topP,
          seed,
          stopIds,
          lora: session.lora,
          onToken: (id) => {
            if (io.json) return;
            ids.push(id);
            const now = tokenizer.decode(stopIds.includes(id) ? ids.slice(0, -1) : ids);
            if (now.startsWith(shown) && !now.endsWith("\uFFFD")) {
              process.stdout.write(now.slice(shown.length));
              shown = now;
            }
          },
        });
        const body = result.stoppedBy === "stop-id" ? result.ids.slice(0, -1) : result.ids;
        const outText = tokenizer.decode(body);
        const tokPerS = result.decodeSeconds > 0 ? (result.ids.length - 1) / result.decodeSeconds : 0;
        if (io.json) {
          io.result({
            prompt_tokens: result.promptTokens,
            ids: result.ids,
            text: outText,
            stopped_by: result.stoppedBy,
            seed: result.seed ?? null,
            prefill_seconds: result.prefillSeconds,
            decode_tokens_per_second: tokPerS,
          });
        } else {
          if (outText.length > shown.length && outText.startsWith(shown)) process.stdout.write(outText.slice(shown.length));
          process.stdout.write("\n");
          io.log(
            `${result.ids.length} tokens (${result.stoppedBy}); prefill ${result.promptTokens} tokens in ${result.prefillSeconds.toFixed(2)} s, ` +
              `decode ${tokPerS.toFixed(1)} tokens/s${result.seed !== undefined ? `; seed ${result.seed}` : ""}`,
          );
        }
      } finally {
        session.dispose();
      }
    });
}
