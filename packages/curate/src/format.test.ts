// Loss masks from message roles alone, checked on the Gemma template (shipped with the tokenizer) and
// on ChatML: every run of trained tokens must decode to exactly one assistant message followed by
// the template's end-of-turn marker, as the published formats define them; nothing else is trained.
import { ChatTemplate, loadDefaultTokenizer, type GemmaTokenizer } from "@owntune/tokenizer";
import { beforeAll, describe, expect, it } from "vitest";
import { formatChat, formatExample, type FormatTokenizer } from "./format.js";
import { RowError, type Message } from "./records.js";

const CHATML =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const conversation: Message[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Name a prime number above 10." },
  { role: "assistant", content: "11 is prime." },
  { role: "user", content: "And one above 100?\n\nThink first." },
  { role: "assistant", content: "101 — it has no divisors but 1 and itself.\n\nDone." },
];

let gemma: GemmaTokenizer;
const withTemplate = (text: string): FormatTokenizer => {
  const t = new ChatTemplate(text, "test-template");
  return {
    encode: (s, o) => gemma.encode(s, o),
    applyChatTemplate: (m, o) => t.render(m, o),
    bosId: gemma.bosId,
    eosId: gemma.eosId,
  };
};

/** Contiguous runs of trained tokens, decoded. */
function trainedRuns(ids: Int32Array, mask: Uint8Array): string[] {
  const runs: string[] = [];
  let start = -1;
  for (let t = 0; t <= ids.length; t++) {
    const on = t < ids.length && mask[t] === 1;
    if (on && start < 0) start = t;
    if (!on && start >= 0) {
      runs.push(gemma.decode(Array.from(ids.subarray(start, t))));
      start = -1;
    }
  }
  return runs;
}

beforeAll(async () => {
  gemma = await loadDefaultTokenizer();
});

describe("chat loss masks", () => {
  it("trains exactly on each assistant turn and its <end_of_turn> with the Gemma template", () => {
    const f = formatChat(gemma, conversation);
    const assistant = conversation.filter((m) => m.role === "assistant");
    // The Gemma template trims content and closes each turn with "<end_of_turn>\n".
    expect(trainedRuns(f.ids, f.mask)).toEqual(assistant.map((m) => `${m.content.trim()}<end_of_turn>\n`));
    expect(gemma.decode(Array.from(f.ids))).toBe(gemma.applyChatTemplate(conversation.map((m) => ({ ...m }))));
    expect(f.boundaryMerges).toBe(0);
  });

  it("trains exactly on each assistant turn and its <|im_end|> with a ChatML template", () => {
    const f = formatChat(withTemplate(CHATML), conversation);
    expect(trainedRuns(f.ids, f.mask)).toEqual(conversation.filter((m) => m.role === "assistant").map((m) => `${m.content}<|im_end|>\n`));
  });

  it("never trains on the first token, and trains on nothing after the last assistant turn", () => {
    const f = formatChat(gemma, [...conversation, { role: "user", content: "Thanks!" }]);
    expect(f.mask[0]).toBe(0);
    const lastAssistantEnd = trainedRuns(f.ids, f.mask).length;
    expect(lastAssistantEnd).toBe(2);
    expect(gemma.decode(Array.from(f.ids.subarray(f.mask.lastIndexOf(1) + 1)))).toBe("<start_of_turn>user\nThanks!<end_of_turn>\n");
  });

  it("fails clearly on a template that is not prefix-consistent", () => {
    const odd = withTemplate("{% for m in messages %}{% if loop.last %}[LAST]{% endif %}{{ m.role }}: {{ m.content }}\n{% endfor %}");
    expect(() => formatChat(odd, conversation)).toThrow(RowError);
    expect(() => formatChat(odd, conversation)).toThrow(
      /^chat template is not prefix-consistent: messages\[0\.\.2\) with the generation prompt is not a prefix of messages\[0\.\.2\] \(they differ at character 23: .*\[LAST\]/,
    );
  });

  it("reports a conversation the template rejects as a problem with the row", () => {
    expect(() =>
      formatChat(gemma, [
        { role: "user", content: "a" },
        { role: "user", content: "b" },
        { role: "assistant", content: "c" },
      ]),
    ).toThrow(/chat template rejected the conversation: .*alternate/);
  });

  it("rejects a conversation without an assistant message", () => {
    expect(() => formatChat(gemma, [{ role: "user", content: "hi" }])).toThrow("conversation has no assistant message to train on");
  });
});

describe("text and prompt/completion", () => {
  it("trains on every token of plain text but the first, ending with EOS", () => {
    const f = formatExample(gemma, { kind: "text", text: "Hello world." }, { promptFormat: "chat" });
    expect(f.ids[0]).toBe(gemma.bosId);
    expect(f.ids[f.ids.length - 1]).toBe(gemma.eosId);
    expect(Array.from(f.mask)).toEqual([0, ...new Array(f.ids.length - 1).fill(1)]);
  });

  it("trains only on the completion (and EOS) of plain prompt/completion rows", () => {
    const f = formatExample(gemma, { kind: "prompt_completion", prompt: "Q: 2+2?\nA:", completion: " 4" }, { promptFormat: "plain" });
    expect(trainedRuns(f.ids, f.mask)).toEqual([` 4${gemma.decode([gemma.eosId])}`]);
  });

  it("renders prompt/completion rows as a user/assistant chat by default", () => {
    const f = formatExample(gemma, { kind: "prompt_completion", prompt: "2+2?", completion: "4" }, { promptFormat: "chat" });
    expect(trainedRuns(f.ids, f.mask)).toEqual(["4<end_of_turn>\n"]);
  });
});
