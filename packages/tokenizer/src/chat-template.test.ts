// Chat templates rendered with @huggingface/jinja: Google's Gemma 3 template as shipped, and a
// Gemma 4-style template written from spec/gemma4.md §6; expected prompts are the published layouts.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "@owntune/core";
import { ChatTemplate, readChatTemplateText, specialTokenVariables } from "./chat-template.js";
import { loadDefaultTokenizer, type GemmaTokenizer } from "./tokenizer.js";

let tok: GemmaTokenizer;
let tmp: string;
beforeAll(async () => {
  tok = await loadDefaultTokenizer();
  tmp = await mkdtemp(join(tmpdir(), "owntune-chat-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("the Gemma 3 chat template (tokenizer_config.json of the release)", () => {
  it("renders turns as <start_of_turn>role…<end_of_turn>, assistant as model, system text folded into the first user turn", () => {
    const prompt = tok.applyChatTemplate(
      [
        { role: "system", content: "Be brief." },
        { role: "user", content: "  Hi there  " },
        { role: "assistant", content: "Hello!" },
        { role: "user", content: [{ type: "text", text: "Bye" }] },
      ],
      { addGenerationPrompt: true },
    );
    expect(prompt).toBe(
      "<bos><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n" +
        "<start_of_turn>model\nHello!<end_of_turn>\n" +
        "<start_of_turn>user\nBye<end_of_turn>\n" +
        "<start_of_turn>model\n",
    );
    // Encoded with special-token parsing: one <bos>, turn markers as single ids.
    const ids = tok.encode(prompt);
    expect(ids.filter((i) => i === tok.bosId).length).toBe(1);
    expect(ids.filter((i) => i === tok.tokenToId("<start_of_turn>")).length).toBe(4);
  });

  it("turns the template's raise_exception into a UserError naming the template", () => {
    expect(() => tok.applyChatTemplate([{ role: "assistant", content: "first" }])).toThrow(
      expect.objectContaining({
        message: "chat template: Conversation roles must alternate user/assistant/user/assistant/...",
        file: expect.stringMatching(/tokenizer_config\.json$/),
      }),
    );
  });
});

/** A Gemma 4-style template written from spec §6: native system turn, <|think|>, model role, thinking stripped from history. */
const GEMMA4_STYLE = `{{ bos_token }}
{%- set ns = namespace(messages=messages) -%}
{%- if (enable_thinking is defined and enable_thinking) or messages[0]['role'] in ['system', 'developer'] -%}
  {{- '<|turn>system\\n' -}}
  {%- if enable_thinking is defined and enable_thinking -%}{{- '<|think|>' -}}{%- endif -%}
  {%- if messages[0]['role'] in ['system', 'developer'] -%}
    {{- messages[0]['content'] | trim -}}
    {%- set ns.messages = messages[1:] -%}
  {%- endif -%}
  {{- '<turn|>\\n' -}}
{%- endif -%}
{%- for message in ns.messages -%}
  {%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}
  {{- '<|turn>' + role + '\\n' -}}
  {%- if role == 'model' and '<channel|>' in message['content'] -%}
    {{- message['content'].split('<channel|>')[-1] | trim -}}
  {%- else -%}
    {{- message['content'] | trim -}}
  {%- endif -%}
  {{- '<turn|>\\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}{{- '<|turn>model\\n' -}}{%- endif -%}`;

describe("a Gemma 4-style template", () => {
  const t = new ChatTemplate(GEMMA4_STYLE, "test", { bos_token: "<bos>", eos_token: "<eos>" });

  it("renders the minimal single-turn prompt of spec §6", () => {
    expect(t.render([{ role: "user", content: "Hello" }], { addGenerationPrompt: true })).toBe(
      "<bos><|turn>user\nHello<turn|>\n<|turn>model\n",
    );
  });

  it("writes a native system turn with <|think|>, maps assistant to model and strips thinking from history", () => {
    const prompt = t.render(
      [
        { role: "system", content: " Be brief. " },
        { role: "user", content: "2+2?" },
        { role: "assistant", content: "<|channel>thought\nadd them<channel|>4" },
        { role: "user", content: "3+3?" },
      ],
      { addGenerationPrompt: true, variables: { enable_thinking: true } },
    );
    expect(prompt).toBe(
      "<bos><|turn>system\n<|think|>Be brief.<turn|>\n<|turn>user\n2+2?<turn|>\n<|turn>model\n4<turn|>\n<|turn>user\n3+3?<turn|>\n<|turn>model\n",
    );
  });

  it("reports a template that does not parse", () => {
    expect(() => new ChatTemplate("{% if %}", "bad.jinja")).toThrow(UserError);
  });
});

describe("readChatTemplateText", () => {
  it("takes chat_template.jinja over tokenizer_config.json, and picks named templates from a list", async () => {
    const dir = join(tmp, "named");
    await mkdir(dir);
    const config = {
      chat_template: [
        { name: "default", template: "D" },
        { name: "tool_use", template: "T" },
      ],
    };
    expect(await readChatTemplateText(dir, config)).toEqual({
      text: "D",
      source: `${join(dir, "tokenizer_config.json")} (chat_template "default")`,
    });
    expect((await readChatTemplateText(dir, config, "tool_use"))?.text).toBe("T");
    await expect(readChatTemplateText(dir, config, "rag")).rejects.toThrow('no chat template named "rag" (has: default, tool_use)');
    await writeFile(join(dir, "chat_template.jinja"), "J");
    expect(await readChatTemplateText(dir, config)).toEqual({ text: "J", source: join(dir, "chat_template.jinja") });
  });

  it("passes every *_token of tokenizer_config (strings or AddedToken objects) to the template", () => {
    expect(
      specialTokenVariables({ bos_token: "<bos>", eos_token: { content: "<eos>", lstrip: false }, model_max_length: 5, pad_token: null }),
    ).toEqual({
      bos_token: "<bos>",
      eos_token: "<eos>",
    });
  });
});
