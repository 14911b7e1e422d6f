// CSV reader through csv-parse (RFC 4180 quoting, header row gives the field names). Streams; the
// reported line is where the record starts in the file.
import { createReadStream } from "node:fs";
import { parse, type Parser } from "csv-parse";
import { UserError } from "@owntune/core";
import { findInvalidUtf8, type SourceRow } from "./source-row.js";

/** Streams CSV records as objects keyed by the header row. */
export async function* readCsv(path: string, displayName = path): AsyncGenerator<SourceRow> {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const parser = parse({ columns: true, info: true, bom: true, relax_column_count: false, skip_empty_lines: true });
  const source = createReadStream(path, { highWaterMark: 1 << 20 });
  let lineBase = 1; // lines consumed before the current chunk, for locating invalid UTF-8
  let failure: Error | undefined;
  // Validate UTF-8 ourselves (csv-parse would substitute U+FFFD silently), then feed the parser.
  const feed = (async () => {
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        let text: string;
        try {
          text = decoder.decode(chunk, { stream: true });
        } catch {
          const at = Math.max(findInvalidUtf8(chunk), 0);
          let line = lineBase;
          for (let i = 0; i < at; i++) if (chunk[i] === 0x0a) line++;
          throw new UserError("invalid UTF-8", { file: displayName, line });
        }
        for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x0a) lineBase++;
        if (!parser.write(text)) await drainedOrGone(parser);
        if (parser.destroyed) return; // the parser failed, or the reader was abandoned: nothing more to feed
      }
      parser.end(decoder.decode());
    } catch (e) {
      failure = e as Error;
      parser.destroy(e as Error);
    }
  })();
  // csv-parse reports the line a record ends on; it starts after the previous one ended.
  let lastEnd = 1; // the header line
  let lastBytes = 0;
  try {
    for await (const rec of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number; bytes: number } }>) {
      yield { file: displayName, line: lastEnd + 1, value: rec.record, bytes: rec.info.bytes - lastBytes };
      lastEnd = rec.info.lines;
      lastBytes = rec.info.bytes;
    }
  } catch (e) {
    if (failure) throw failure;
    if (e instanceof UserError) throw e;
    const err = e as Error & { lines?: number };
    throw new UserError(`malformed CSV (${err.message})`, { file: displayName, line: err.lines });
  } finally {
    // Reached early when the parser failed or the caller stopped reading: stop the feed, then wait for it.
    source.destroy();
    parser.destroy();
    await feed;
  }
  if (failure) throw failure;
}

/** Resolves when the parser wants more input, or will never want it again (closed, failed). */
function drainedOrGone(parser: Parser): Promise<void> {
  if (parser.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      parser.off("drain", done);
      parser.off("close", done);
      parser.off("error", done);
      resolve();
    };
    parser.on("drain", done);
    parser.on("close", done);
    parser.on("error", done);
  });
}
