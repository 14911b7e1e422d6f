// report.html of a curated dataset: one self-contained page (inline CSS and SVG, no scripts, no
// network) with the drop funnel per filter, token-length histograms before and after, packing
// efficiency, PII counts, and a few dropped examples per filter (HTML-escaped).
import type { LengthTally } from "./counters.js";
import type { Manifest } from "./manifest.js";

export interface DroppedSample {
  reason: string;
  text: string;
  where?: string;
}

export interface ReportData {
  manifest: Manifest;
  samples: Record<string, DroppedSample[]>;
  badRows: Array<{ file: string; line: number; field?: string; message: string }>;
  /** Token counts of every formatted example, before token limits, truncation and dedup. */
  lengthsBefore: LengthTally;
  /** Token counts of the examples in the dataset (train copies included). */
  lengthsAfter: LengthTally;
}

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const STAGE_TITLES: Record<string, string> = {
  bad_rows: "Malformed rows (skipped)",
  length: "Length (characters, words)",
  language: "Language ID (fastText lid.176)",
  gopher_repetition: "Gopher repetition",
  gopher_quality: "Gopher quality",
  c4: "C4",
  fineweb: "FineWeb",
  blocklist: "Blocklist",
  decontaminate: "Decontamination",
  tokens: "Token length",
  dedup_exact: "Exact dedup",
  dedup_near: "MinHash near-dedup",
  sampling: "Mixing weight < 1 (sampled out)",
};

const fmt = (n: number) => n.toLocaleString("en-US");
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function funnel(m: Manifest): string {
  let remaining = m.counts.rows_read ?? 0;
  const rows: string[] = [];
  const max = Math.max(remaining, 1);
  rows.push(`<tr><td>Rows read</td><td class="n">—</td><td class="n">${fmt(remaining)}</td><td>${bar(remaining / max)}</td><td></td></tr>`);
  for (const [stage, reasons] of Object.entries(m.drops)) {
    const dropped = Object.values(reasons).reduce((a, b) => a + b, 0);
    remaining -= dropped;
    const detail = Object.entries(reasons)
      .sort((a, b) => b[1] - a[1])
      .map(([r, n]) => `${escapeHtml(r)}: ${fmt(n)}`)
      .join(", ");
    rows.push(
      `<tr><td>${escapeHtml(STAGE_TITLES[stage] ?? stage)}</td><td class="n drop">−${fmt(dropped)}</td><td class="n">${fmt(remaining)}</td><td>${bar(remaining / max)}</td><td class="detail">${detail}</td></tr>`,
    );
  }
  return `<table><thead><tr><th>Stage</th><th>Dropped</th><th>Remaining</th><th></th><th>Reasons</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function bar(fraction: number): string {
  const w = Math.max(0, Math.min(1, fraction)) * 200;
  return `<svg width="200" height="12" role="img"><rect width="200" height="12" fill="#eee"/><rect width="${w.toFixed(1)}" height="12" fill="#4c78a8"/></svg>`;
}

/** Side-by-side histogram of two length distributions over shared bins. */
function histogram(before: LengthTally, after: LengthTally, seqLen: number): string {
  let maxLen = Math.max(seqLen, 1);
  for (const x of before.counts.keys()) maxLen = Math.max(maxLen, x);
  const bins = 24;
  const width = Math.ceil(maxLen / bins);
  const count = (xs: LengthTally) => {
    const c = new Array<number>(bins).fill(0);
    for (const [x, n] of xs.counts) c[Math.min(bins - 1, Math.floor(x / width))]! += n;
    return c;
  };
  const a = count(before);
  const b = count(after);
  const top = [...a, ...b].reduce((x, y) => Math.max(x, y), 1);
  const W = 720;
  const H = 220;
  const pad = 40;
  const bw = (W - pad - 10) / bins;
  const parts: string[] = [];
  for (let i = 0; i < bins; i++) {
    const x = pad + i * bw;
    const ha = ((H - 40) * a[i]!) / top;
    const hb = ((H - 40) * b[i]!) / top;
    parts.push(
      `<rect x="${x.toFixed(1)}" y="${(H - 20 - ha).toFixed(1)}" width="${(bw / 2 - 1).toFixed(1)}" height="${ha.toFixed(1)}" fill="#bbb"><title>${i * width}–${(i + 1) * width} tokens: ${a[i]} before</title></rect>`,
    );
    parts.push(
      `<rect x="${(x + bw / 2).toFixed(1)}" y="${(H - 20 - hb).toFixed(1)}" width="${(bw / 2 - 1).toFixed(1)}" height="${hb.toFixed(1)}" fill="#4c78a8"><title>${i * width}–${(i + 1) * width} tokens: ${b[i]} after</title></rect>`,
    );
    if (i % 4 === 0) parts.push(`<text x="${x.toFixed(1)}" y="${H - 5}" font-size="10">${i * width}</text>`);
  }
  const seqX = pad + (seqLen / width) * bw;
  parts.push(
    `<line x1="${seqX.toFixed(1)}" x2="${seqX.toFixed(1)}" y1="10" y2="${H - 20}" stroke="#e45756" stroke-dasharray="4 3"/><text x="${(seqX + 3).toFixed(1)}" y="20" font-size="10" fill="#e45756">seq_len ${seqLen}</text>`,
  );
  parts.push(`<text x="0" y="20" font-size="10">${fmt(top)}</text><text x="0" y="${H - 20}" font-size="10">0</text>`);
  return `<svg width="${W}" height="${H}" role="img" aria-label="token length histogram">${parts.join("")}</svg>
<p class="legend"><span style="background:#bbb"></span> before (${fmt(before.total)} formatted examples) <span style="background:#4c78a8"></span> after (${fmt(after.total)} in the dataset)</p>`;
}

function samplesSection(samples: Record<string, DroppedSample[]>): string {
  const out: string[] = [];
  for (const [stage, list] of Object.entries(samples)) {
    if (list.length === 0) continue;
    out.push(`<h3>${escapeHtml(STAGE_TITLES[stage] ?? stage)}</h3>`);
    for (const s of list) {
      out.push(
        `<div class="sample"><div class="meta">${escapeHtml(s.reason)}${s.where ? ` · ${escapeHtml(s.where)}` : ""}</div><pre>${escapeHtml(s.text)}</pre></div>`,
      );
    }
  }
  return out.join("\n") || "<p>Nothing was dropped.</p>";
}

/** The whole report page. */
export function renderReport(d: ReportData): string {
  const m = d.manifest;
  const t = m.splits.train;
  const v = m.splits.val;
  const piiRows = Object.entries(m.pii)
    .map(([k, n]) => `<tr><td>${escapeHtml(k)}</td><td class="n">${fmt(n)}</td></tr>`)
    .join("");
  const inputs = m.inputs
    .map(
      (i) =>
        `<tr><td>${escapeHtml(i.path)}</td><td>${escapeHtml(i.format)}</td><td>${escapeHtml(i.schema)}</td><td class="n">${i.weight}</td><td class="n">${fmt(i.rows)}</td><td class="mono">${i.sha256.slice(0, 12)}</td></tr>`,
    )
    .join("");
  const bad = d.badRows
    .map(
      (b) =>
        `<tr><td class="mono">${escapeHtml(`${b.file}:${b.line}`)}</td><td>${escapeHtml(b.field ?? "")}</td><td>${escapeHtml(b.message)}</td></tr>`,
    )
    .join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>owntune dataset report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1000px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.n{text-align:right;font-variant-numeric:tabular-nums}.drop{color:#b22}.detail{font-size:12px;color:#555}.mono{font-family:ui-monospace,monospace;font-size:12px}
pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;border:1px solid #e5e5e5;padding:.6em;max-height:14em;overflow:auto;font-size:12px}
.sample .meta{font-size:12px;color:#666}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}.card b{display:block;font-size:1.3em}
</style></head><body>
<h1>Dataset report</h1>
<div class="cards">
<div class="card">train rows<b>${fmt(t.rows)}</b>${fmt(t.examples)} examples, ${fmt(t.tokens)} tokens</div>
<div class="card">val rows<b>${fmt(v.rows)}</b>${fmt(v.examples)} examples, ${fmt(v.tokens)} tokens</div>
<div class="card">packing efficiency<b>${pct(t.packing_efficiency)}</b>${m.packing ? "best-fit-decreasing" : "no packing (padded)"}, seq_len ${m.seq_len}</div>
<div class="card">trained tokens<b>${pct(t.tokens ? t.trained_tokens / t.tokens : 0)}</b>of train tokens have loss_mask 1</div>
</div>
<h2>Inputs</h2>
<table><thead><tr><th>Path</th><th>Format</th><th>Schema</th><th>Weight</th><th>Rows</th><th>sha256</th></tr></thead><tbody>${inputs}</tbody></table>
<p>Tokenizer: ${escapeHtml(m.tokenizer.source)} (sha256 <span class="mono">${m.tokenizer.sha256.slice(0, 12)}</span>, ${fmt(m.tokenizer.vocab_size)} entries). Seed ${m.seed}.</p>
<h2>Drop funnel</h2>
${funnel(m)}
<p>${fmt(m.counts.truncated ?? 0)} examples truncated to seq_len. Each train example appears as many times as its input's weight says.</p>
<h2>Token lengths</h2>
${histogram(d.lengthsBefore, d.lengthsAfter, m.seq_len)}
<h2>PII redacted</h2>
${piiRows ? `<table><tbody>${piiRows}</tbody></table>` : "<p>None found (or redaction off).</p>"}
<h2>Dropped examples</h2>
${samplesSection(d.samples)}
${bad ? `<h2>Malformed rows</h2><table><thead><tr><th>Where</th><th>Field</th><th>Problem</th></tr></thead><tbody>${bad}</tbody></table>` : ""}
</body></html>
`;
}
