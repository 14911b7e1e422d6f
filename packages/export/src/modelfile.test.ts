// The Modelfile's Go TEMPLATE against the model's own Jinja chat template: both render the same
// conversations to the same text (BOS aside, which llama.cpp/Ollama add). Go's text/template — the
// engine Ollama uses — renders ours when a Go toolchain is installed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { oracle } from "@owntune/core/testing";
import { ChatTemplate, specialTokenVariables, type ChatMessage } from "@owntune/tokenizer";
import { afterAll, describe, expect, it } from "vitest";
import { chatFormat, goChatTemplate, modelfileText, type RenderChat } from "./modelfile.js";
import { gemmaTokenizerDir } from "./testing/fixtures.js";

// Checked first: with OWNTUNE_REQUIRE_ORACLES=1 a missing Go fails this file before it makes its folder.
function goInstalled(): boolean {
  try {
    execFileSync("go", ["version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
const goAvailable = oracle({
  name: "go",
  found: goInstalled(),
  missing: "no Go toolchain on PATH",
  tests: "export's Modelfile TEMPLATE rendering (modelfile.test.ts)",
});

const dir = mkdtempSync(join(tmpdir(), "owntune-modelfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const tokenizerConfig = JSON.parse(readFileSync(join(gemmaTokenizerDir(), "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
const gemma3 = new ChatTemplate(tokenizerConfig.chat_template as string, "gemma3", specialTokenVariables(tokenizerConfig));

/** A Gemma 4 style template (own system turn), written from spec/gemma4.md §6. */
const gemma4Text = `{{ bos_token }}{%- for m in messages -%}{%- set role = 'model' if m['role'] == 'assistant' else m['role'] -%}{{ '<|turn>' + role + '\\n' + (m['content'] | trim) + '<turn|>\\n' }}{%- endfor -%}{%- if add_generation_prompt -%}{{ '<|turn>model\\n' }}{%- endif -%}`;
const gemma4 = new ChatTemplate(gemma4Text, "gemma4", { bos_token: "<bos>" });

const renderWith =
  (t: ChatTemplate): RenderChat =>
  (messages, gen) =>
    t.render(messages, { addGenerationPrompt: gen });

const conversations: Array<{ name: string; messages: ChatMessage[]; gen: boolean }> = [
  { name: "one user turn, generation prompt", messages: [{ role: "user", content: "Hello there" }], gen: true },
  {
    name: "system + user",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ],
    gen: true,
  },
  {
    name: "multi-turn",
    messages: [
      { role: "user", content: "A" },
      { role: "assistant", content: "B" },
      { role: "user", content: "C" },
    ],
    gen: true,
  },
  {
    name: "system + multi-turn",
    messages: [
      { role: "system", content: "S" },
      { role: "user", content: "A" },
      { role: "assistant", content: "B" },
      { role: "user", content: "C" },
    ],
    gen: true,
  },
];

/** Renders `template` with Go's text/template on Ollama's data shape (.Messages of {Role, Content}). */
function goRender(template: string, messages: ChatMessage[]): string {
  const main = join(dir, "main.go");
  writeFileSync(
    main,
    `package main
import ("encoding/json"; "os"; "text/template")
type Message struct { Role string; Content string }
func main() {
  var in struct { Template string; Messages []Message }
  if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil { panic(err) }
  t := template.Must(template.New("m").Parse(in.Template))
  if err := t.Execute(os.Stdout, map[string]any{"Messages": in.Messages}); err != nil { panic(err) }
}
`,
  );
  const input = JSON.stringify({ Template: template, Messages: messages.map((m) => ({ Role: m.role, Content: m.content })) });
  return execFileSync("go", ["run", main], {
    input,
    env: { ...process.env, GOCACHE: join(dir, "gocache"), GOFLAGS: "-mod=mod", GO111MODULE: "off" },
  }).toString();
}

describe.each([
  ["Gemma 3 (system merged into the first user turn)", gemma3, "merged"],
  ["Gemma 4 (system turn of its own)", gemma4, "turn"],
] as const)("the Modelfile template for %s", (_, template, systemKind) => {
  const format = chatFormat(renderWith(template), "<bos>");

  it("finds the turn markers", () => {
    expect(format.system.kind).toBe(systemKind);
    expect(format.bos).toBe("<bos>");
  });

  it.skipIf(!goAvailable).each(conversations)(
    "renders $name exactly as the Jinja template does (via Go's text/template)",
    { timeout: 60_000 },
    ({ messages, gen }) => {
      const want = template.render(messages, { addGenerationPrompt: gen }).replace(/^<bos>/, "");
      expect(goRender(goChatTemplate(format), messages)).toBe(want);
    },
  );
});

describe("modelfileText", () => {
  it("writes FROM, ADAPTER, TEMPLATE and one stop per end-of-generation token", () => {
    expect(
      modelfileText({ from: "./model-Q4_K_M.gguf", adapter: "./adapter.gguf", template: "T", stops: ["<eos>", "<end_of_turn>"] }),
    ).toBe('FROM ./model-Q4_K_M.gguf\nADAPTER ./adapter.gguf\nTEMPLATE """T"""\nPARAMETER stop "<eos>"\nPARAMETER stop "<end_of_turn>"\n');
  });
});
