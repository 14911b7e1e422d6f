// `owntune score --model DIR [--adapter DIR] --input FILE.jsonl [--json]`: per-token log-probabilities and
// mean NLL of each row under our forward pass (what `owntune verify` compares with llama.cpp).
// Rows are `{"text": ...}` (tokenized with BOS, as the tokenizer says) or `{"ids": [...]}`.
import type { GemmaTokenizer } from "@owntune/tokenizer";
import { UserError } from "@owntune/core";
import { scoreIds } from "@owntune/model";
import type { Command } from "commander";
import { commandIO, readJsonLines } from "../cli-io.js";
import { modelOptions, openModel, type ModelFlags } from "./model-session.js";

interface ScoreFlags extends ModelFlags {
  input: string;
}

/** One input row, resolved to token ids; `line` is 1-based in the input file. */
interface Row {
  line: number;
  ids: number[];
}

/** Checks every row first, so a typo on line 900 is reported before any compute. */
export function parseScoreInput(
  lines: ReadonlyArray<{ line: number; value: unknown }>,
  file: string,
  tokenizer: GemmaTokenizer,
  vocabSize: number,
  context = Infinity,
): Row[] {
  const rows: Row[] = [];
  const fits = (ids: readonly number[], line: number, field: string) => {
    if (ids.length > context) {
      throw new UserError(`${ids.length} tokens, more than the model's context of ${context} (max_position_embeddings)`, {
        file,
        line,
        field,
        hint: "split the row into shorter ones",
      });
    }
  };
  lines.forEach(({ line, value: v }) => {
    const shape = `expected {"text": "..."} or {"ids": [token ids]}`;
    if (!v || typeof v !== "object" || Array.isArray(v)) throw new UserError(`${shape}, got ${JSON.stringify(v)}`, { file, line });
    const o = v as Record<string, unknown>;
    if ((o.text === undefined) === (o.ids === undefined)) throw new UserError(`${shape} (exactly one of them)`, { file, line });
    if (o.text !== undefined) {
      if (typeof o.text !== "string")
        throw new UserError(`"text" must be a string, got ${JSON.stringify(o.text)}`, { file, line, field: "text" });
      const ids = tokenizer.encode(o.text);
      const beyond = ids.find((id) => id >= vocabSize);
      if (beyond !== undefined)
        throw new UserError(`text contains token ${beyond}, past the model's vocab_size ${vocabSize}`, { file, line, field: "text" });
      fits(ids, line, "text");
      rows.push({ line, ids });
      return;
    }
    if (!Array.isArray(o.ids) || o.ids.length === 0)
      throw new UserError(`"ids" must be a non-empty array of token ids`, { file, line, field: "ids" });
    const bad = o.ids.findIndex((id) => !Number.isInteger(id) || (id as number) < 0 || (id as number) >= vocabSize);
    if (bad >= 0) {
      throw new UserError(`ids[${bad}] = ${JSON.stringify(o.ids[bad])} is not a token id of this model (0 … ${vocabSize - 1})`, {
        file,
        line,
        field: "ids",
      });
    }
    fits(o.ids as number[], line, "ids");
    rows.push({ line, ids: o.ids as number[] });
  });
  return rows;
}

export function registerScore(program: Command): void {
  modelOptions(program.command("score"))
    .description("per-token log-probabilities and mean NLL of each row of a JSONL file under the model")
    .requiredOption("--input <file>", 'JSONL: one {"text": ...} or {"ids": [...]} per line')
    .action(async (flags: ScoreFlags, cmd: Command) => {
      const io = commandIO(cmd);
      const input = await readJsonLines(flags.input);
      const session = await openModel(io, flags);
      try {
        const rows = parseScoreInput(
          input,
          flags.input,
          session.tokenizer,
          session.model.config.vocab_size,
          session.model.config.max_position_embeddings,
        );
        io.progress.start(rows.length, "scoring", "rows");
        let tokens = 0;
        let nllSum = 0;
        for (const row of rows) {
          const r = scoreIds(session.model, row.ids, { lora: session.lora });
          tokens += r.logprobs.length;
          nllSum += r.logprobs.reduce((a, b) => a - b, 0);
          const nll = Number.isNaN(r.nll) ? null : r.nll;
          if (io.json) process.stdout.write(JSON.stringify({ ids: r.ids, logprobs: r.logprobs, nll }) + "\n");
          else
            io.result(
              undefined,
              `line ${row.line}: ${r.ids.length} tokens, nll ${nll === null ? "-" : nll.toFixed(4)}${nll === null ? "" : `, perplexity ${Math.exp(nll).toFixed(2)}`}`,
            );
          io.progress.increment();
          await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C in between rows
        }
        io.progress.stop();
        if (!io.json && tokens > 0)
          io.result(undefined, `${rows.length} rows, ${tokens} scored tokens, mean nll ${(nllSum / tokens).toFixed(4)}`);
      } finally {
        session.dispose();
      }
    });
}
