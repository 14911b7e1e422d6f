// The Ollama `Modelfile` of an export: FROM the GGUF, a Go TEMPLATE that reproduces the model's own
// chat template for system/user/assistant turns, and a stop PARAMETER per end-of-generation token.
// The template is derived by rendering the HF (Jinja) template on sentinel messages and cutting the
// text around them, so it follows whatever turn markers the model uses (Gemma 3's or Gemma 4's).
import { UserError } from "@owntune/core";

/** Renders messages with the model's chat template (as transformers' apply_chat_template). */
export type RenderChat = (messages: Array<{ role: string; content: string }>, addGenerationPrompt: boolean) => string;

/** Turn markers of a chat template, cut from renders of sentinel messages. */
export interface ChatFormat {
  /** Text the template starts with (the BOS token): llama.cpp/Ollama add BOS themselves. */
  bos: string;
  userPrefix: string;
  userSuffix: string;
  assistantPrefix: string;
  assistantSuffix: string;
  /** The generation prompt appended after the last user turn. */
  generationPrompt: string;
  /** A system message: its own turn, or merged into the first user turn before a separator. */
  system: { kind: "turn"; prefix: string; suffix: string } | { kind: "merged"; separator: string } | { kind: "none" };
}

const U = "\u0001USER\u0001";
const A = "\u0001ASSISTANT\u0001";
const S = "\u0001SYSTEM\u0001";

function cut(text: string, marker: string, what: string): [string, string] {
  const i = text.indexOf(marker);
  if (i < 0 || text.indexOf(marker, i + 1) >= 0)
    throw new UserError(`the chat template does not render ${what} verbatim, so no Modelfile TEMPLATE can be derived from it`);
  return [text.slice(0, i), text.slice(i + marker.length)];
}

/**
 * Reads a template's turn markers from sentinel renders. `bos` is the BOS token's text, which the
 * template writes first and llama.cpp/Ollama add themselves, so it is left out of the markers.
 */
export function chatFormat(render: RenderChat, bos: string | undefined): ChatFormat {
  const strip = (t: string) => (bos && t.startsWith(bos) ? t.slice(bos.length) : t);
  const one = strip(render([{ role: "user", content: U }], false));
  const [userPrefix, userSuffix] = cut(one, U, "a user message");
  const two = strip(
    render(
      [
        { role: "user", content: U },
        { role: "assistant", content: A },
      ],
      false,
    ),
  );
  if (!two.startsWith(one))
    throw new UserError("the chat template renders a user turn differently when an answer follows; no Modelfile TEMPLATE can reproduce it");
  const [assistantPrefix, assistantSuffix] = cut(two.slice(one.length), A, "an assistant message");
  const gen = strip(render([{ role: "user", content: U }], true));
  if (!gen.startsWith(one)) throw new UserError("the chat template's generation prompt is not appended to the conversation");
  let system: ChatFormat["system"] = { kind: "none" };
  let withSystem: string | undefined;
  try {
    withSystem = strip(
      render(
        [
          { role: "system", content: S },
          { role: "user", content: U },
        ],
        false,
      ),
    );
  } catch {
    withSystem = undefined; // the template refuses system messages
  }
  const tail = U + userSuffix;
  if (withSystem?.endsWith(tail) && withSystem.includes(S)) {
    const [beforeS, afterS] = cut(withSystem, S, "a system message");
    const between = afterS.slice(0, afterS.length - tail.length);
    if (beforeS === userPrefix) {
      system = { kind: "merged", separator: between }; // Gemma 3: the system text opens the first user turn
    } else if (between.endsWith(userPrefix)) {
      system = { kind: "turn", prefix: beforeS, suffix: between.slice(0, between.length - userPrefix.length) }; // Gemma 4
    }
  }
  return { bos: bos ?? "", userPrefix, userSuffix, assistantPrefix, assistantSuffix, generationPrompt: gen.slice(one.length), system };
}

/**
 * Literal text as a Go string action: immune to the `{{-` trims between lines (turn markers end in
 * newlines) and to `{{` inside markers. JSON string syntax is valid Go string-literal syntax.
 */
function goLiteral(s: string): string {
  return s === "" ? "" : `{{ ${JSON.stringify(s)} }}`;
}

/**
 * A Go template (Ollama's TEMPLATE) producing the same text as the HF template for system, user
 * and assistant messages, with the generation prompt after a final non-assistant message.
 */
export function goChatTemplate(f: ChatFormat): string {
  const L = goLiteral;
  const lines: string[] = [];
  if (f.system.kind === "merged") lines.push("{{- $sys := false }}");
  lines.push("{{- range $i, $_ := .Messages }}");
  lines.push("{{- $last := eq (len (slice $.Messages $i)) 1 }}");
  if (f.system.kind === "turn") {
    lines.push(`{{- if eq .Role "system" }}${L(f.system.prefix)}{{ .Content }}${L(f.system.suffix)}`);
    lines.push(`{{- else if eq .Role "user" }}${L(f.userPrefix)}{{ .Content }}${L(f.userSuffix)}`);
  } else if (f.system.kind === "merged") {
    lines.push(`{{- if eq .Role "system" }}${L(f.userPrefix)}{{ .Content }}${L(f.system.separator)}{{ $sys = true }}`);
    lines.push(
      `{{- else if eq .Role "user" }}{{ if not $sys }}${L(f.userPrefix)}{{ end }}{{ .Content }}${L(f.userSuffix)}{{ $sys = false }}`,
    );
  } else {
    lines.push(`{{- if eq .Role "user" }}${L(f.userPrefix)}{{ .Content }}${L(f.userSuffix)}`);
  }
  lines.push(`{{- else if eq .Role "assistant" }}${L(f.assistantPrefix)}{{ .Content }}{{ if not $last }}${L(f.assistantSuffix)}{{ end }}`);
  lines.push("{{- end }}");
  lines.push(`{{- if and $last (ne .Role "assistant") }}${L(f.generationPrompt)}{{ end }}`);
  lines.push("{{- end }}");
  return lines.join("\n");
}

export interface ModelfileOptions {
  /** The GGUF, relative to the Modelfile (e.g. `./model-Q4_K_M.gguf`). */
  from: string;
  /** An adapter GGUF applied on top (Ollama ADAPTER), when the base is not merged. */
  adapter?: string;
  template?: string;
  /** Token texts that end generation. */
  stops: readonly string[];
}

/** The Modelfile text. */
export function modelfileText(o: ModelfileOptions): string {
  const out = [`FROM ${o.from}`];
  if (o.adapter) out.push(`ADAPTER ${o.adapter}`);
  if (o.template !== undefined) {
    if (o.template.includes('"""')) throw new UserError('the chat template contains """, which a Modelfile TEMPLATE cannot hold');
    out.push(`TEMPLATE """${o.template}"""`);
  }
  for (const s of o.stops) out.push(`PARAMETER stop ${JSON.stringify(s)}`);
  return out.join("\n") + "\n";
}
