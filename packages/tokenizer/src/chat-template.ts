// Chat templates: the Jinja text a model ships (`chat_template.jinja`, or `chat_template` in
// `tokenizer_config.json` — a string or a list of named templates), rendered with @huggingface/jinja
// with the variables transformers' `apply_chat_template` provides (messages, tools, documents,
// add_generation_prompt, the special tokens; raise_exception and strftime_now are built in).
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Template } from "@huggingface/jinja";
import { UserError } from "@owntune/core";

/** One chat message; `content` is text or a list of parts (`{type: "text", text}`, `{type: "image"}`, …). */
export interface ChatMessage {
  role: string;
  content: string | Array<Record<string, unknown>>;
  [key: string]: unknown;
}

export interface RenderOptions {
  /** Append the opening of the model's turn so generation continues as the assistant. Default false. */
  addGenerationPrompt?: boolean;
  /** Tool (function) definitions, passed as `tools`. */
  tools?: unknown[];
  /** Retrieval documents, passed as `documents`. */
  documents?: unknown[];
  /** Any other template variable, e.g. `{ enable_thinking: true }` for Gemma 4. */
  variables?: Record<string, unknown>;
}

/** A parsed chat template; `source` names where it came from (for error messages). */
export class ChatTemplate {
  readonly text: string;
  readonly source: string;
  private readonly template: Template;
  /** Special-token strings the template may use: bos_token, eos_token, pad_token, unk_token, …. */
  private readonly specialTokens: Readonly<Record<string, string>>;

  constructor(text: string, source: string, specialTokens: Record<string, string> = {}) {
    this.text = text;
    this.source = source;
    this.specialTokens = specialTokens;
    try {
      this.template = new Template(text);
    } catch (e) {
      throw new UserError(`chat template does not parse: ${(e as Error).message}`, { file: source });
    }
  }

  /** Renders `messages` to the prompt text (special tokens as text: encode it with special-token parsing). */
  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    const context: Record<string, unknown> = {
      ...this.specialTokens,
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? false,
      ...(options.tools !== undefined ? { tools: options.tools } : {}),
      ...(options.documents !== undefined ? { documents: options.documents } : {}),
      ...options.variables,
    };
    try {
      return this.template.render(context);
    } catch (e) {
      // raise_exception(...) in the template, or a message shape it does not handle.
      throw new UserError(`chat template: ${(e as Error).message}`, { file: this.source });
    }
  }
}

/** The string value of a tokenizer_config special-token entry (a string or an AddedToken object). */
export function tokenContent(entry: unknown): string | undefined {
  if (typeof entry === "string") return entry;
  if (entry && typeof entry === "object" && typeof (entry as { content?: unknown }).content === "string") {
    return (entry as { content: string }).content;
  }
  return undefined;
}

/** Every `*_token` entry of a tokenizer_config as a string (what transformers passes to templates). */
export function specialTokenVariables(tokenizerConfig: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(tokenizerConfig)) {
    if (!key.endsWith("_token")) continue;
    const content = tokenContent(value);
    if (content !== undefined) out[key] = content;
  }
  return out;
}

/**
 * The chat template text of a model directory and where it came from: `chat_template.jinja` first
 * (how transformers saves it now), else `chat_template` in `tokenizer_config.json` — a string, or a
 * list of `{name, template}` from which `name` (default "default") is taken. Undefined if none.
 */
export async function readChatTemplateText(
  dir: string,
  tokenizerConfig: Record<string, unknown>,
  name = "default",
): Promise<{ text: string; source: string } | undefined> {
  const jinjaPath = join(dir, "chat_template.jinja");
  if (existsSync(jinjaPath)) return { text: await readFile(jinjaPath, "utf8"), source: jinjaPath };
  const configPath = join(dir, "tokenizer_config.json");
  const t = tokenizerConfig.chat_template;
  if (t === undefined || t === null) return undefined;
  if (typeof t === "string") return { text: t, source: configPath };
  if (Array.isArray(t)) {
    const named = t.filter(
      (x): x is { name: string; template: string } =>
        !!x && typeof x === "object" && typeof x.name === "string" && typeof x.template === "string",
    );
    const hit = named.find((x) => x.name === name);
    if (hit) return { text: hit.template, source: `${configPath} (chat_template "${name}")` };
    if (named.length === t.length && name === "default") return undefined;
    throw new UserError(`no chat template named "${name}" (has: ${named.map((x) => x.name).join(", ") || "none"})`, {
      file: configPath,
      field: "chat_template",
    });
  }
  throw new UserError("chat_template must be a string or a list of {name, template}", { file: configPath, field: "chat_template" });
}
