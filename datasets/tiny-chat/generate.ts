// Generates data.jsonl: ~400 short synthetic chats whose answers are computed, so every answer is
// right by construction. Deterministic (seeded); run: node --import tsx datasets/tiny-chat/generate.ts
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let state = 20240601;
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

const WORDS = ["river", "lantern", "orchard", "pebble", "harbor", "meadow", "compass", "thistle", "glacier", "violin", "saddle", "quartz"];
const SYSTEM = "You are a careful assistant. Answer briefly and show the key step.";

type Msg = { role: "system" | "user" | "assistant"; content: string };
const tasks: Array<() => Msg[]> = [
  () => {
    const a = int(2, 999),
      b = int(2, 999);
    return [
      { role: "user", content: `What is ${a} + ${b}?` },
      { role: "assistant", content: `${a} + ${b} = ${a + b}.` },
    ];
  },
  () => {
    const a = int(2, 99),
      b = int(2, 99);
    return [
      { role: "user", content: `Multiply ${a} by ${b}.` },
      { role: "assistant", content: `${a} × ${b} = ${a * b}.` },
    ];
  },
  () => {
    const w = pick(WORDS);
    return [
      { role: "user", content: `Spell "${w}" backwards.` },
      { role: "assistant", content: `"${w}" backwards is "${[...w].reverse().join("")}".` },
    ];
  },
  () => {
    const w = pick(WORDS),
      c = pick([...new Set(w)]);
    const n = [...w].filter((x) => x === c).length;
    return [
      { role: "user", content: `How many times does the letter "${c}" appear in "${w}"?` },
      { role: "assistant", content: `"${c}" appears ${n} time${n === 1 ? "" : "s"} in "${w}".` },
    ];
  },
  () => {
    const xs = Array.from({ length: int(3, 6) }, () => int(1, 50));
    return [
      { role: "user", content: `Sort these numbers from smallest to largest: ${xs.join(", ")}.` },
      { role: "assistant", content: `Sorted: ${[...xs].sort((a, b) => a - b).join(", ")}.` },
    ];
  },
  () => {
    const km = int(1, 40) / 2;
    return [
      { role: "user", content: `How many meters are in ${km} km?` },
      { role: "assistant", content: `1 km is 1000 m, so ${km} km is ${km * 1000} m.` },
    ];
  },
  () => {
    const a = int(1, 500),
      b = int(1, 500);
    const q1 = `Which is larger, ${a} or ${b}?`;
    const ans = a === b ? `They are equal: both are ${a}.` : `${Math.max(a, b)} is larger than ${Math.min(a, b)}.`;
    const a2 = int(1, 9);
    return [
      { role: "user", content: q1 },
      { role: "assistant", content: ans },
      { role: "user", content: `And what is the larger one times ${a2}?` },
      { role: "assistant", content: `${Math.max(a, b)} × ${a2} = ${Math.max(a, b) * a2}.` },
    ];
  },
];

const rows: string[] = [];
for (let i = 0; i < 400; i++) {
  const messages = pick(tasks)();
  if (rand() < 0.25) messages.unshift({ role: "system", content: SYSTEM });
  rows.push(JSON.stringify({ messages }));
}
// A few exact copies, as real collections have: curation's exact dedup drops them.
for (let i = 0; i < 8; i++) rows.push(rows[int(0, 399)]!);

const out = join(dirname(fileURLToPath(import.meta.url)), "data.jsonl");
writeFileSync(out, rows.join("\n") + "\n");
console.log(`wrote ${rows.length} rows to ${out}`);
