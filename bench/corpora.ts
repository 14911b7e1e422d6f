// Corpora for the curate benchmarks. Synthetic prose (chats of generated English sentences) at any
// size, and real mixed text assembled from files already on every Debian/Ubuntu machine with Python:
// the Python standard library's sources (/usr/lib/python3.*/**/*.py) and the Debian package docs
// (/usr/share/doc/**: READMEs, changelogs, copyright files; .gz ones decompressed), one JSON line
// per file, alternating code and prose, files in sorted path order.
import { createWriteStream, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { mulberry32 } from "@owntune/core";

const WORDS = (
  "the of and to in that it with as for was on be by this are from at or an have not but they which one you were all we " +
  "river town bridge market season harvest record council canal storm letter spice merchant library water summer travel " +
  "history farmer children family stone winter garden village morning evening people music story window country"
).split(" ");

/** Documents of synthetic English prose (2–6 paragraphs, 5% with an e-mail and a phone number), `bytes` in all. */
export function makeDocs(bytes: number, seed: number): string[] {
  const rand = mulberry32(seed);
  const docs: string[] = [];
  let total = 0;
  while (total < bytes) {
    const doc = syntheticDoc(rand);
    docs.push(doc);
    total += Buffer.byteLength(doc);
  }
  return docs;
}

function syntheticDoc(rand: () => number): string {
  const paras: string[] = [];
  for (let p = 0, np = 2 + Math.floor(rand() * 5); p < np; p++) {
    const sents: string[] = [];
    for (let s = 0, ns = 3 + Math.floor(rand() * 6); s < ns; s++) {
      const w = Array.from({ length: 6 + Math.floor(rand() * 14) }, () => WORDS[Math.floor(rand() * WORDS.length)]!);
      sents.push(w.join(" ").replace(/^./, (c) => c.toUpperCase()) + ".");
    }
    paras.push(sents.join(" "));
  }
  if (rand() < 0.05) paras.push("Contact me at someone@example.com or 555-123-4567.");
  return paras.join("\n\n");
}

/** A synthetic document as the chat row `bench curate` feeds the pipeline. */
export function chatLine(doc: string): string {
  const [q, ...rest] = doc.split("\n\n");
  return JSON.stringify({
    messages: [
      { role: "user", content: q },
      { role: "assistant", content: rest.join("\n\n") || q },
    ],
  });
}

/** Streams `bytes` of synthetic chat JSONL into `file` without holding it (for the 2 GB runs). */
export async function writeSyntheticJsonl(file: string, bytes: number, seed: number): Promise<number> {
  const out = createWriteStream(file);
  const rand = mulberry32(seed);
  let total = 0;
  let buf: string[] = [];
  while (total < bytes) {
    const line = chatLine(syntheticDoc(rand)) + "\n";
    total += Buffer.byteLength(line);
    buf.push(line);
    if (buf.length === 1000) {
      if (!out.write(buf.join(""))) await new Promise<void>((r) => out.once("drain", () => r()));
      buf = [];
    }
  }
  out.write(buf.join(""));
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return total;
}

function listFiles(dir: string, keep: (name: string) => boolean, out: string[] = []): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) listFiles(p, keep, out);
    else if (e.isFile() && keep(e.name)) out.push(p);
  }
  return out;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function textOf(path: string): string | undefined {
  try {
    if (statSync(path).size > 4 << 20) return undefined;
    let bytes: Uint8Array = readFileSync(path);
    if (path.endsWith(".gz")) bytes = gunzipSync(bytes);
    if (bytes.includes(0)) return undefined; // binary
    const text = utf8.decode(bytes);
    return text.trim() === "" ? undefined : text;
  } catch {
    return undefined;
  }
}

/** Real mixed text: up to `bytes` of JSONL lines {"text": file}, Python sources and package docs alternating. */
export function realTextJsonl(bytes: number): { lines: string[]; files: { python: number; docs: number }; sources: string[] } {
  const pythonRoot = readdirSync("/usr/lib")
    .filter((n) => /^python3\.\d+$/.test(n))
    .sort()
    .pop();
  const python = pythonRoot ? listFiles(join("/usr/lib", pythonRoot), (n) => n.endsWith(".py")) : [];
  const docs = listFiles("/usr/share/doc", () => true);
  const lines: string[] = [];
  const files = { python: 0, docs: 0 };
  let total = 0;
  for (let i = 0; total < bytes && (i < python.length || i < docs.length); i++) {
    for (const [kind, list] of [
      ["python", python],
      ["docs", docs],
    ] as const) {
      const f = list[i];
      const text = f === undefined ? undefined : textOf(f);
      if (text === undefined || total >= bytes) continue;
      const line = JSON.stringify({ text });
      lines.push(line);
      total += Buffer.byteLength(line) + 1;
      files[kind]++;
    }
  }
  return { lines, files, sources: [pythonRoot ? join("/usr/lib", pythonRoot) : "(no python3)", "/usr/share/doc"] };
}
