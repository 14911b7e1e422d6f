// Examples → token ids + loss_mask. Chat data is rendered with the model's own chat template; the
// assistant spans are found from message roles alone, for any Jinja template and without
// `{% generation %}` markers: render the conversation up to each assistant turn (with the generation
// prompt) and through it, check both renderings are prefixes of the whole, and map the character
// boundaries to token boundaries by encoding the prefixes. (TRL's assistant_only_loss needs
// generation markers; this does not.)
import type { Example, Message } from "./records.js";
import { RowError } from "./records.js";

/** What formatting needs from a tokenizer (@owntune/tokenizer's GemmaTokenizer provides it). */
export interface FormatTokenizer {
  encode(text: string, options?: { addBos?: boolean }): number[];
  applyChatTemplate(messages: ReadonlyArray<{ role: string; content: string }>, options?: { addGenerationPrompt?: boolean }): string;
  readonly bosId: number;
  readonly eosId: number;
}

export interface FormatOptions {
  /** How prompt/completion rows are rendered: as a user/assistant chat, or as plain concatenated text. */
  promptFormat: "chat" | "plain";
}

/** Token ids and which of them are trained on. */
export interface Formatted {
  ids: Int32Array;
  /** 1 where the token is a training target (predicted from the tokens before it). */
  mask: Uint8Array;
  /** Token boundaries where BPE merged across a turn boundary (the straddling token is trained on). */
  boundaryMerges: number;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function firstDifference(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

function excerpt(s: string, at: number): string {
  return JSON.stringify(s.slice(Math.max(0, at - 10), at + 20));
}

/** Throws unless `prefix` is a prefix of `whole`, naming both renderings and where they part. */
function requirePrefix(prefix: string, whole: string, what: string, ofWhat: string): void {
  if (whole.startsWith(prefix)) return;
  const at = firstDifference(prefix, whole);
  throw new RowError(
    "messages",
    `chat template is not prefix-consistent: ${what} is not a prefix of ${ofWhat} (they differ at character ${at}: ${excerpt(prefix, at)} vs ${excerpt(whole, at)}); ` +
      "loss masks cannot be derived from roles with this template",
  );
}

function renderChat(tok: FormatTokenizer, messages: readonly Message[], addGenerationPrompt: boolean): string {
  try {
    return tok.applyChatTemplate(messages, { addGenerationPrompt });
  } catch (e) {
    // A template's raise_exception (e.g. roles that do not alternate) is a problem with this row.
    throw new RowError("messages", (e as Error).message.replace(/^chat template: /, "chat template rejected the conversation: "));
  }
}

/**
 * Ids and mask of a conversation: tokens of each assistant turn (its content and the template's
 * end-of-turn marker) are trained on; system/user turns and template scaffolding are not.
 */
export function formatChat(tok: FormatTokenizer, messages: readonly Message[]): Formatted {
  const full = renderChat(tok, messages, false);
  const ids = tok.encode(full, { addBos: true });
  const mask = new Uint8Array(ids.length);
  let merges = 0;
  // Token index where `prefix` ends inside `ids`: exact when encode(prefix) is a prefix of ids;
  // otherwise the first differing token (BPE merged across the boundary) is counted as after it.
  const boundary = (prefix: string): { at: number; exact: boolean } => {
    if (prefix === full) return { at: ids.length, exact: true };
    const p = tok.encode(prefix, { addBos: true });
    const k = commonPrefix(p, ids);
    return { at: k, exact: k === p.length };
  };
  let trained = false;
  for (let i = 0; i < messages.length; i++) {
    if (messages[i]!.role !== "assistant") continue;
    const before = renderChat(tok, messages.slice(0, i), true);
    const through = i + 1 === messages.length ? full : renderChat(tok, messages.slice(0, i + 1), false);
    requirePrefix(before, through, `messages[0..${i}) with the generation prompt`, `messages[0..${i}]`);
    requirePrefix(through, full, `messages[0..${i}]`, "the whole conversation");
    const start = boundary(before);
    const end = boundary(through);
    if (!start.exact) merges++;
    // A token straddling the end of the turn carries its end marker: train on it.
    const stop = end.exact ? end.at : Math.min(end.at + 1, ids.length);
    if (!end.exact) merges++;
    for (let t = start.at; t < stop; t++) mask[t] = 1;
    if (stop > start.at) trained = true;
  }
  if (!trained) throw new RowError("messages", "conversation has no assistant message to train on");
  mask[0] = 0;
  return { ids: Int32Array.from(ids), mask, boundaryMerges: merges };
}

/** Plain text (BOS + text + EOS): every token but the first is trained on. */
export function formatText(tok: FormatTokenizer, text: string): Formatted {
  const ids = tok.encode(text, { addBos: true });
  ids.push(tok.eosId);
  const mask = new Uint8Array(ids.length).fill(1);
  mask[0] = 0;
  return { ids: Int32Array.from(ids), mask, boundaryMerges: 0 };
}

/** Plain prompt + completion (TRL's non-conversational layout): only the completion and EOS are trained on. */
export function formatPlainCompletion(tok: FormatTokenizer, prompt: string, completion: string): Formatted {
  const full = tok.encode(prompt + completion, { addBos: true });
  const p = tok.encode(prompt, { addBos: true });
  const k = commonPrefix(p, full);
  full.push(tok.eosId);
  const mask = new Uint8Array(full.length);
  mask.fill(1, k);
  mask[0] = 0;
  return { ids: Int32Array.from(full), mask, boundaryMerges: k === p.length ? 0 : 1 };
}

/** Formats any example per its kind. Throws RowError for a conversation the template rejects. */
export function formatExample(tok: FormatTokenizer, ex: Example, options: FormatOptions): Formatted {
  switch (ex.kind) {
    case "text":
      return formatText(tok, ex.text);
    case "prompt_completion":
      return options.promptFormat === "plain"
        ? formatPlainCompletion(tok, ex.prompt, ex.completion)
        : formatChat(tok, [
            { role: "user", content: ex.prompt },
            { role: "assistant", content: ex.completion },
          ]);
    case "chat":
      return formatChat(tok, ex.messages);
  }
}
