// Row schemas → examples. The five layouts people fine-tune with (TRL / Axolotl names): plain text,
// prompt/completion, alpaca (instruction/input/output), sharegpt (conversations with from/value) and
// OpenAI-style messages (role/content). Field names come from the input's `fields` config.
import type { FieldNames } from "./config.js";

export type Role = "system" | "user" | "assistant";
export interface Message {
  role: Role;
  content: string;
}

/** A training example before tokenization. */
export type Example =
  | { kind: "text"; text: string }
  | { kind: "prompt_completion"; prompt: string; completion: string }
  | { kind: "chat"; messages: Message[] };

export type RowSchema = "text" | "prompt_completion" | "alpaca" | "sharegpt" | "messages";

/** A row that does not fit its schema: which field, and what is wrong. */
export class RowError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** The schema a row's fields suggest (checked in this order), or undefined. */
export function detectSchema(row: Record<string, unknown>, f: FieldNames): RowSchema | undefined {
  if (f.messages in row) return "messages";
  if (f.conversations in row) return "sharegpt";
  if (f.instruction in row && f.output in row) return "alpaca";
  if (f.prompt in row && f.completion in row) return "prompt_completion";
  if (f.text in row) return "text";
  return undefined;
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (Array.isArray(v)) return "a list";
  return typeof v === "object" ? "an object" : String(v);
}

function str(row: Record<string, unknown>, field: string, optional = false): string {
  const v = row[field];
  if (v === undefined || v === null) {
    if (optional) return "";
    throw new RowError(field, "missing required field");
  }
  if (typeof v !== "string") throw new RowError(field, `expected a string, got ${describe(v)}`);
  return v;
}

const ROLE_ALIASES: Record<string, Role> = {
  system: "system",
  developer: "system",
  user: "user",
  human: "user",
  assistant: "assistant",
  model: "assistant",
  gpt: "assistant",
  chatgpt: "assistant",
  bard: "assistant",
  bing: "assistant",
};

/** OpenAI content may be a list of parts; only text parts are supported. */
function contentText(v: unknown, field: string): string {
  if (typeof v === "string") return v;
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        const p = part as { type?: unknown; text?: unknown };
        if (p && p.type === "text" && typeof p.text === "string") return p.text;
        throw new RowError(`${field}[${i}]`, `only text content parts are supported, got ${describe(p?.type)}`);
      })
      .join("");
  }
  if (v === undefined || v === null) throw new RowError(field, "missing required field");
  throw new RowError(field, `expected a string, got ${describe(v)}`);
}

function messagesFrom(list: unknown, listField: string, roleKey: string, contentKey: string): Message[] {
  if (list === undefined || list === null) throw new RowError(listField, "missing required field");
  if (!Array.isArray(list)) throw new RowError(listField, `expected a list of messages, got ${describe(list)}`);
  if (list.length === 0) throw new RowError(listField, "expected at least one message, got an empty list");
  return list.map((m, i) => {
    const at = `${listField}[${i}]`;
    if (m === null || typeof m !== "object") throw new RowError(at, `expected a message object, got ${describe(m)}`);
    const rec = m as Record<string, unknown>;
    const rawRole = rec[roleKey];
    if (typeof rawRole !== "string") {
      throw new RowError(
        `${at}.${roleKey}`,
        rawRole === undefined ? "missing required field" : `expected a string, got ${describe(rawRole)}`,
      );
    }
    const role = ROLE_ALIASES[rawRole.toLowerCase()];
    if (!role) throw new RowError(`${at}.${roleKey}`, `expected system, user or assistant, got ${describe(rawRole)}`);
    return { role, content: contentText(rec[contentKey], `${at}.${contentKey}`) };
  });
}

/** Maps one row to an example under `schema`; throws RowError naming the field on a bad row. */
export function toExample(row: Record<string, unknown>, schema: RowSchema, f: FieldNames): Example {
  switch (schema) {
    case "text":
      return { kind: "text", text: str(row, f.text) };
    case "prompt_completion":
      return { kind: "prompt_completion", prompt: str(row, f.prompt), completion: str(row, f.completion) };
    case "alpaca": {
      const instruction = str(row, f.instruction);
      const input = str(row, f.input, true);
      return {
        kind: "prompt_completion",
        prompt: input.trim() === "" ? instruction : `${instruction}\n\n${input}`,
        completion: str(row, f.output),
      };
    }
    case "sharegpt":
      return { kind: "chat", messages: messagesFrom(row[f.conversations], f.conversations, f.from, f.value) };
    case "messages": {
      const messages = messagesFrom(row[f.messages], f.messages, f.role, f.content);
      // A separate system column (some datasets keep it apart) becomes the first message.
      const sys = row[f.system];
      if (typeof sys === "string" && sys.trim() !== "" && messages[0]?.role !== "system") {
        messages.unshift({ role: "system", content: sys });
      }
      return { kind: "chat", messages };
    }
  }
}

/** All the text of an example, joined: what text filters, PII and dedup look at. */
export function exampleText(ex: Example): string {
  switch (ex.kind) {
    case "text":
      return ex.text;
    case "prompt_completion":
      return `${ex.prompt}\n\n${ex.completion}`;
    case "chat":
      return ex.messages.map((m) => m.content).join("\n\n");
  }
}

/** Applies `fn` to every piece of text in an example (normalizers, PII redaction). */
export function mapExampleText(ex: Example, fn: (s: string) => string): Example {
  switch (ex.kind) {
    case "text":
      return { kind: "text", text: fn(ex.text) };
    case "prompt_completion":
      return { kind: "prompt_completion", prompt: fn(ex.prompt), completion: fn(ex.completion) };
    case "chat":
      return { kind: "chat", messages: ex.messages.map((m) => ({ role: m.role, content: fn(m.content) })) };
  }
}

/** The text an exact-dedup key is computed from: roles are part of a conversation's identity. */
export function dedupKeyText(ex: Example): string {
  return ex.kind === "chat" ? ex.messages.map((m) => `${m.role}: ${m.content}`).join("\n") : exampleText(ex);
}
