// What `owntune inspect PATH` dispatches to: one inspector per kind of path (model dir, safetensors
// file, GGUF, dataset dir, run dir…). The first whose `matches` says yes summarises it.
import type { Stats } from "node:fs";

/** A summary: `data` is printed under --json, `lines` otherwise. */
export interface Inspection {
  /** The kind of thing inspected, e.g. "model directory". */
  kind: string;
  data: Record<string, unknown>;
  lines: string[];
}

export interface Inspector {
  /** What it inspects, for `owntune inspect --help` and the "cannot inspect" message. */
  kind: string;
  /** True when this inspector handles `path` (cheap checks: extension, marker files). */
  matches(path: string, stat: Stats): boolean;
  inspect(path: string): Promise<Inspection>;
}

/** A count as a short human figure: 5.1B, 32.0M, 12.3k, 999. */
export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(n);
}
