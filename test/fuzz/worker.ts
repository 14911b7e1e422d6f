// The fuzz worker thread (harness.ts runFuzz): builds one target's valid input in `dir`, then runs
// cases `from` … `to`-1, announcing each before it starts so a case that never ends can be named.
import { parentPort, workerData } from "node:worker_threads";
import { caseInput, runCase, type WorkerMessage } from "./harness.js";
import { allTargets } from "./targets.js";

const { target: name, seed, from, to, dir } = workerData as { target: string; seed: number; from: number; to: number; dir: string };
const target = allTargets.find((t) => t.name === name);
if (!target) throw new Error(`no fuzz target named ${name}`);
const post = (m: WorkerMessage) => parentPort!.postMessage(m);
const base = await target.setup(dir);
for (let index = from; index < to; index++) {
  const input = caseInput(target, base, seed, index);
  post({ kind: "start", index, mutation: input.mutation });
  post(await runCase(target, input, dir, index));
}
post({ kind: "done" });
