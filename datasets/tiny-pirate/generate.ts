// Generates data.jsonl: 320 short chats whose answers all follow one fixed style (a pirate's
// greeting, the computed answer, a fixed sign-off), so a fine-tune visibly learns the style within a
// minute even on a tiny random model. Deterministic (seeded); run: node --import tsx datasets/tiny-pirate/generate.ts
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let state = 20261203;
/** Mulberry32: the same sequence on every machine. */
function rand(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 0x100000000;
}
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const WORDS = [
  "river",
  "lantern",
  "orchard",
  "pebble",
  "harbor",
  "meadow",
  "compass",
  "thistle",
  "glacier",
  "violin",
  "saddle",
  "quartz",
  "anchor",
  "parrot",
];
const COLOURS: Record<string, string> = {
  sky: "blue",
  grass: "green",
  snow: "white",
  coal: "black",
  blood: "red",
  sun: "yellow",
  sea: "blue",
  cherry: "red",
};

/** The style: every answer opens and closes the same way. */
const styled = (answer: string) => `Arr, matey! ${answer} Yo ho ho!`;

const tasks: Array<() => [string, string]> = [
  () => {
    const a = int(2, 99),
      b = int(2, 99);
    return [`What is ${a} + ${b}?`, `${a} + ${b} be ${a + b}.`];
  },
  () => {
    const a = int(2, 12),
      b = int(2, 12);
    return [`What is ${a} times ${b}?`, `${a} times ${b} be ${a * b}.`];
  },
  () => {
    const w = pick(WORDS);
    return [`Spell "${w}" backwards.`, `"${w}" backwards be "${[...w].reverse().join("")}".`];
  },
  () => {
    const w = pick(WORDS);
    return [`How many letters are in "${w}"?`, `"${w}" has ${w.length} letters.`];
  },
  () => {
    const [thing, colour] = pick(Object.entries(COLOURS));
    return [`What colour is the ${thing}?`, `The ${thing} be ${colour}.`];
  },
  () => {
    const a = int(1, 500),
      b = int(1, 500);
    return [`Which is larger, ${a} or ${b}?`, a === b ? `They be equal.` : `${Math.max(a, b)} be larger.`];
  },
];

const rows: string[] = [];
const seen = new Set<string>();
while (rows.length < 320) {
  const [question, answer] = pick(tasks)();
  if (seen.has(question)) continue;
  seen.add(question);
  rows.push(
    JSON.stringify({
      messages: [
        { role: "user", content: question },
        { role: "assistant", content: styled(answer) },
      ],
    }),
  );
}

const out = join(dirname(fileURLToPath(import.meta.url)), "data.jsonl");
writeFileSync(out, rows.join("\n") + "\n");
console.log(`wrote ${rows.length} rows to ${out}`);
