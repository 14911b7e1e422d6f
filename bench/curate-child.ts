// One curate run in its own process, for curate-scale.bench.ts to read its peak RSS (threads included):
// `node … bench/curate-child.ts JSON` where JSON = { config, outDir, shard?, merge?, memoryBytes? };
// prints one JSON line { seconds, cpuSeconds (all threads), bytesRead, maxRssMiB, counts… }.
import { curate, curateMerge, curateSchema, curateShard } from "@owntune/curate";

const job = JSON.parse(process.argv[2]!) as {
  config: unknown;
  outDir: string;
  shard?: { index: number; count: number };
  merge?: string;
  memoryBytes?: number;
};
const config = curateSchema.parse(job.config);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
let out: Record<string, unknown>;
if (job.shard) {
  const s = await curateShard({ config, outDir: job.outDir, shard: job.shard });
  out = { bytesRead: s.bytesRead };
} else {
  const s = job.merge
    ? await curateMerge({ config, outDir: job.outDir, partsDir: job.merge })
    : await curate({ config, outDir: job.outDir, memoryBytes: job.memoryBytes });
  out = {
    bytesRead: s.bytesRead,
    counts: s.manifest.counts,
    efficiency: s.manifest.splits.train.packing_efficiency,
    trainRows: s.manifest.splits.train.rows,
  };
}
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    ...out,
    seconds: (performance.now() - t0) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  }),
);
