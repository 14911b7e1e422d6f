// Fuzzing at depth: 10,000 mutated files per parser (CI runs 1,000, test/fuzz-*.test.ts), the same
// targets and harness (test/fuzz/). Fails on the first failure of any kind (a crash, a hang past the
// time bound, a huge allocation), then prints per parser: cases accepted / refused, seconds, cases
// per second and the slowest case, and a few refusal messages as users would read them.
//   pnpm bench fuzz     (env: OWNTUNE_BENCH_FUZZ_CASES=10000  OWNTUNE_FUZZ_SEED=11  OWNTUNE_BENCH_FUZZ_ONLY=GGUF)
import { describeFailures, runFuzz } from "../test/fuzz/harness.js";
import { allTargets } from "../test/fuzz/targets.js";

export default async function fuzzBench(): Promise<void> {
  const cases = Number(process.env.OWNTUNE_BENCH_FUZZ_CASES ?? 10_000);
  const seed = Number(process.env.OWNTUNE_FUZZ_SEED ?? 11);
  const only = process.env.OWNTUNE_BENCH_FUZZ_ONLY;
  console.log(`${cases} cases per parser, seed ${seed}`);
  console.log(
    `${"parser".padEnd(42)} ${"accepted".padStart(8)} ${"refused".padStart(8)} ${"seconds".padStart(8)} ${"cases/s".padStart(8)} ${"slowest".padStart(9)}`,
  );
  let total = 0;
  let seconds = 0;
  const samples: string[] = [];
  for (const target of allTargets) {
    if (only && !target.name.includes(only)) continue;
    const r = await runFuzz(target, { cases, seed });
    if (r.failures.length > 0) throw new Error(`${r.failures.length} failure(s):\n${describeFailures(r)}`);
    total += r.cases;
    seconds += r.seconds;
    console.log(
      `${target.name.padEnd(42)} ${String(r.accepted).padStart(8)} ${String(r.refused).padStart(8)} ${r.seconds.toFixed(1).padStart(8)} ${(r.cases / r.seconds).toFixed(0).padStart(8)} ${`${r.slowestMs.toFixed(0)} ms`.padStart(9)}`,
    );
    samples.push(...r.messages.slice(0, 2).map((m) => `  ${target.name}: ${m.length > 150 ? m.slice(0, 150) + "…" : m}`));
  }
  console.log(`${total} cases in ${seconds.toFixed(1)} s, no failure`);
  console.log("some refusals, as users read them:");
  for (const s of samples) console.log(s);
}
