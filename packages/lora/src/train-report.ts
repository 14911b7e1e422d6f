// report.html of a training run: one self-contained page (inline CSS and SVG, no scripts, no network)
// with the loss and eval-loss curves, the learning rate, throughput, the sample generations and the
// run's settings. Written at the end of a run; `renderTrainReport` is pure for tests.
import { join } from "node:path";
import { writeFileAtomic } from "@owntune/core";
import { escapeHtml } from "@owntune/curate";
import { REPORT_FILE, type RunRecord } from "./run-dir.js";

export interface TrainReportData {
  record: RunRecord;
  /** The start banner, as printed. */
  banner: readonly string[];
  metrics: ReadonlyArray<Record<string, unknown>>;
  samples: ReadonlyArray<Record<string, unknown>>;
}

export async function writeTrainReport(runDir: string, d: TrainReportData): Promise<void> {
  await writeFileAtomic(join(runDir, REPORT_FILE), renderTrainReport(d));
}

interface Series {
  label: string;
  color: string;
  points: Array<[number, number]>;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

function series(rows: ReadonlyArray<Record<string, unknown>>, type: string, key: string, label: string, color: string): Series {
  const points: Array<[number, number]> = [];
  for (const r of rows) {
    const x = num(r.step);
    const y = num(r[key]);
    if (r.type === type && x !== undefined && y !== undefined) points.push([x, y]);
  }
  return { label, color, points };
}

/** A line chart of one or more series over steps, with min/max labels on the y axis. */
function chart(title: string, all: readonly Series[], yFormat: (v: number) => string): string {
  const lines = all.filter((s) => s.points.length > 0);
  if (lines.length === 0) return `<h3>${escapeHtml(title)}</h3><p>No data.</p>`;
  const W = 720;
  const H = 220;
  const L = 60;
  const R = 12;
  const T = 12;
  const Bm = 28;
  const xs = lines.flatMap((s) => s.points.map((p) => p[0]));
  const ys = lines.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (y0 === y1) [y0, y1] = [y0 - 1e-9 - Math.abs(y0) * 0.05, y1 + 1e-9 + Math.abs(y1) * 0.05];
  const px = (x: number) => L + ((x - x0) / Math.max(1e-12, x1 - x0)) * (W - L - R);
  const py = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - Bm);
  const parts: string[] = [
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - Bm}" fill="#fafafa" stroke="#ddd"/>`,
    `<text x="${L - 6}" y="${T + 10}" font-size="10" text-anchor="end">${escapeHtml(yFormat(y1))}</text>`,
    `<text x="${L - 6}" y="${H - Bm}" font-size="10" text-anchor="end">${escapeHtml(yFormat(y0))}</text>`,
    `<text x="${L}" y="${H - 10}" font-size="10">step ${x0}</text>`,
    `<text x="${W - R}" y="${H - 10}" font-size="10" text-anchor="end">step ${x1}</text>`,
  ];
  for (const s of lines) {
    const d = s.points.map(([x, y], i) => `${i === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("");
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`);
    if (s.points.length <= 60)
      for (const [x, y] of s.points)
        parts.push(
          `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="2" fill="${s.color}"><title>step ${x}: ${escapeHtml(yFormat(y))}</title></circle>`,
        );
  }
  const legend = lines.map((s) => `<span style="background:${s.color}"></span> ${escapeHtml(s.label)}`).join(" ");
  return `<h3>${escapeHtml(title)}</h3><svg width="${W}" height="${H}" role="img" aria-label="${escapeHtml(title)}">${parts.join("")}</svg><p class="legend">${legend}</p>`;
}

export function renderTrainReport(d: TrainReportData): string {
  const r = d.record;
  const f = r.final;
  const fmt = (v: number | null | undefined, digits = 4) => (v === null || v === undefined ? "—" : v.toFixed(digits));
  const lastSamples = (() => {
    const steps = d.samples.map((s) => num(s.step) ?? -1);
    const last = steps.length ? Math.max(...steps) : -1;
    return d.samples.filter((s) => s.step === last);
  })();
  const firstStep = d.samples.length ? Math.min(...d.samples.map((s) => num(s.step) ?? Infinity)) : undefined;
  const firstSamples = firstStep !== undefined ? d.samples.filter((s) => s.step === firstStep) : [];
  const sampleRows = lastSamples
    .map((s) => {
      const early = firstSamples.find((e) => e.prompt === s.prompt);
      return `<tr><td><pre>${escapeHtml(String(s.prompt))}</pre></td>${firstSamples.length && firstStep !== s.step ? `<td><pre>${escapeHtml(String(early?.completion ?? ""))}</pre></td>` : ""}<td><pre>${escapeHtml(String(s.completion))}</pre></td></tr>`;
    })
    .join("");
  const earlyHeader =
    firstSamples.length && lastSamples.length && firstStep !== lastSamples[0]!.step ? `<th>Completion at step ${firstStep}</th>` : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>owntune training report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;border:1px solid #e5e5e5;padding:.6em;margin:0;max-height:14em;overflow:auto;font-size:12px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}.card b{display:block;font-size:1.3em}
</style></head><body>
<h1>Training report</h1>
<div class="cards">
<div class="card">status<b>${escapeHtml(r.status)}</b>step ${r.steps.done} of ${r.steps.total}</div>
<div class="card">final train loss<b>${fmt(f?.loss)}</b>token-weighted, last step</div>
<div class="card">eval loss<b>${fmt(f?.eval_loss)}</b>perplexity ${fmt(f?.eval_perplexity, 2)}</div>
<div class="card">throughput<b>${f ? Math.round(f.tokens_per_s).toLocaleString("en-US") : "—"} tok/s</b>${f ? `${(f.elapsed_s / 60).toFixed(1)} min in all` : ""}</div>
<div class="card">adapter<b>step ${r.adapter_step ?? "—"}</b>${r.plan.trainable_parameters.toLocaleString("en-US")} parameters</div>
</div>
<h2>Curves</h2>
${chart("Loss", [series(d.metrics, "train", "loss", "train loss (per step)", "#4c78a8"), series(d.metrics, "eval", "eval_loss", "eval loss (val split)", "#e45756")], (v) => v.toFixed(3))}
${chart("Learning rate", [series(d.metrics, "train", "lr", "learning rate", "#54a24b")], (v) => v.toExponential(2))}
${chart("Throughput", [series(d.metrics, "train", "tokens_per_s", "tokens per second", "#b279a2")], (v) => v.toFixed(0))}
${chart("Gradient norm (before clipping)", [series(d.metrics, "train", "grad_norm", "global gradient norm", "#f58518")], (v) => v.toFixed(3))}
<h2>Sample generations</h2>
${sampleRows ? `<table><thead><tr><th>Prompt</th>${earlyHeader}<th>Completion at step ${String(lastSamples[0]!.step)}</th></tr></thead><tbody>${sampleRows}</tbody></table>` : "<p>No sample prompts were given (train.samples).</p>"}
<h2>Run</h2>
<pre>${escapeHtml(d.banner.join("\n"))}</pre>
<h3>Settings</h3>
<pre>${escapeHtml(JSON.stringify(r.config, null, 2))}</pre>
<p>Model ${escapeHtml(r.model_dir)}, dataset ${escapeHtml(r.data_dir)} (manifest sha256 <code>${r.identity.dataset.manifest_sha256.slice(0, 12)}</code>). ${escapeHtml(
    Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(", "),
  )}; ${escapeHtml(r.backend)}.</p>
</body></html>
`;
}
