// Progress reporting for long work: library code reports through the `Progress` interface; the CLI
// decides whether it is drawn (a bar with rate and ETA on a TTY) or silent (--json, pipes, tests).
import cliProgress from "cli-progress";
import { formatBytes } from "./format-bytes.js";

/** Where long-running library code reports how far it got. */
export interface Progress {
  /** Begins a phase of `total` units (`unit` names them, e.g. "tok"; "B" is shown as kB/MB/GB). */
  start(total: number, label: string, unit?: string): void;
  /** Sets the absolute amount done in the current phase. */
  update(done: number): void;
  /** Adds `n` (default 1) to the amount done. */
  increment(n?: number): void;
  /** Ends the current phase (the bar is left on screen, complete or not). */
  stop(): void;
  /** Shows a short status after the rate (e.g. `loss 2.31`); optional for implementations. */
  note?(text: string): void;
}

/** Reports nothing: the default wherever no progress is wanted. */
export const silentProgress: Progress = {
  start() {},
  update() {},
  increment() {},
  stop() {},
};

function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return "-";
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k`;
  if (perSecond >= 10) return perSecond.toFixed(0);
  return perSecond.toFixed(2);
}

/** An amount for the bar: bytes (unit "B") in kB/MB/GB, other units with the decimals their size needs. */
export function formatAmount(v: number, unit: string): string {
  if (unit === "B") return formatBytes(v);
  const digits = v === 0 || Number.isInteger(v) || v >= 100 ? 0 : v >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${unit}`.trimEnd();
}

/** A terminal bar: `label |█████░░░| 42% 420/1000 tok | 1.2k tok/s | ETA 0:05`. Writes to stderr. */
export function createProgressBar(stream: NodeJS.WriteStream = process.stderr): Progress {
  let bar: cliProgress.SingleBar | undefined;
  let startedAt = 0;
  let value = 0;
  let unit = "";
  let total = 0;
  let note = "";
  const payload = () => {
    const seconds = (performance.now() - startedAt) / 1000;
    const perSecond = seconds > 0 ? value / seconds : Number.NaN;
    return {
      done: formatAmount(value, unit),
      all: formatAmount(total, unit),
      rate:
        unit === "B"
          ? `${Number.isFinite(perSecond) ? formatAmount(perSecond, unit) : "-"}/s`
          : `${formatRate(perSecond)} ${unit}/s`.trimStart(),
      note: note === "" ? "" : ` | ${note}`,
    };
  };
  return {
    start(amount, label, u = "") {
      bar?.stop();
      unit = u;
      note = "";
      total = Math.max(amount, 0);
      value = 0;
      startedAt = performance.now();
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${label} |{bar}| {percentage}% {done} / {all} | {rate} | ETA {eta_formatted}{note}`,
          barsize: 24,
          hideCursor: true,
          etaBuffer: 50,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, payload());
    },
    update(done) {
      value = done;
      bar?.update(done, payload());
    },
    increment(n = 1) {
      value += n;
      bar?.update(value, payload());
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
    note(text) {
      note = text;
      bar?.update(value, payload());
    },
  };
}

/** The bar when stderr is a terminal and output is not JSON; otherwise silence. */
export function progressFor(options: { json?: boolean } = {}): Progress {
  return !options.json && process.stderr.isTTY ? createProgressBar() : silentProgress;
}
