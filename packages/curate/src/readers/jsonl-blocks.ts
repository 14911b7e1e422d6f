// JSON Lines as blocks of whole raw lines, for the worker threads to decode and parse: the main thread
// only finds line ends. A byte range [start, end) takes the lines that begin inside it, so ranges that
// tile a file take every line exactly once (how `--shard i/N` splits one big file).
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { UserError } from "@owntune/core";
import { describeReadFailure } from "./index.js";

export interface JsonlBlock {
  /** Whole lines (the file's last may lack its "\n"), in a buffer of their own. */
  bytes: Uint8Array;
  /** 1-based line number of the first line. */
  firstLine: number;
}

export interface BlockOptions {
  /** Lines beginning at a byte offset in [start, end) are read (uncompressed files only). */
  start?: number;
  end?: number;
  gzip: boolean;
  /** A block ends after the line that reaches this many bytes or lines. */
  maxBytes: number;
  maxLines: number;
}

/** Streams the lines of `path` as blocks; `displayName` names the file in errors. */
export async function* jsonlBlocks(path: string, displayName: string, o: BlockOptions): AsyncGenerator<JsonlBlock> {
  const start = o.gzip ? 0 : (o.start ?? 0);
  const end = o.gzip ? Infinity : (o.end ?? Infinity);
  const raw = createReadStream(path, { highWaterMark: 1 << 20 });
  const stream: AsyncIterable<Buffer> = o.gzip ? raw.pipe(createGunzip()) : raw;
  let buf: Buffer = Buffer.alloc(0);
  let bufPos = 0; // file offset of buf[0]
  let scan = 0; // where the next line begins, in buf
  let line = 0; // lines begun so far
  let blockStart = -1;
  let blockLines = 0;
  let blockFirstLine = 0;
  const take = (to: number): JsonlBlock => {
    const block = { bytes: new Uint8Array(buf.subarray(blockStart, to)), firstLine: blockFirstLine };
    blockStart = -1;
    blockLines = 0;
    return block;
  };
  /** Counts a line beginning at `scan`; false once lines begin at or past `end`. */
  const begin = (): boolean => {
    const at = bufPos + scan;
    if (at >= end) return false;
    line++;
    if (at >= start) {
      if (blockStart < 0) {
        blockStart = scan;
        blockFirstLine = line;
      }
      blockLines++;
    }
    return true;
  };
  try {
    let done = false;
    for await (const chunk of stream) {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      for (;;) {
        const nl = buf.indexOf(0x0a, scan);
        if (nl < 0) break;
        if (!begin()) {
          done = true;
          break;
        }
        scan = nl + 1;
        if (blockStart >= 0 && (scan - blockStart >= o.maxBytes || blockLines >= o.maxLines)) yield take(scan);
      }
      if (done) break;
      const keep = blockStart >= 0 ? blockStart : scan;
      if (blockStart >= 0) blockStart -= keep;
      bufPos += keep;
      scan -= keep;
      buf = buf.subarray(keep);
    }
    if (!done && scan < buf.length) {
      if (begin()) scan = buf.length;
    }
    if (blockStart >= 0) yield take(scan);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(describeReadFailure(e), { file: displayName, line: line + 1 });
  } finally {
    raw.destroy();
  }
}
