// Parquet reader (the format of Hugging Face Hub datasets) through hyparquet: reads one row group at a
// time from a file-backed buffer, so memory holds one row group, not the file. Snappy is built in;
// hyparquet-compressors adds gzip, zstd, brotli and lz4.
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { UserError } from "@owntune/model/core";
import { toPlain, type SourceRow } from "./source-row.js";
import { findInvalidMarker, invalidUtf8Error, strictStringParsers } from "./utf8-check.js";

/** Streams a Parquet file's rows as plain objects, row group by row group. */
export async function* readParquet(path: string, displayName = path): AsyncGenerator<SourceRow> {
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new UserError(`not a readable Parquet file (${(e as Error).message})`, { file: displayName });
  }
  // Strings are decoded strictly: invalid UTF-8 becomes a marker, and its row an error row.
  const strings = strictStringParsers();
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const n = Number(group.num_rows);
    const bytesPerRow = Number(group.total_byte_size) / Math.max(n, 1);
    const invalidBefore = strings.invalid;
    const rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd: rowStart + n, compressors, parsers: strings.parsers });
    const search = strings.invalid > invalidBefore;
    for (let i = 0; i < rows.length; i++) {
      const line = rowStart + i + 1;
      const bad = search ? findInvalidMarker(rows[i]) : undefined;
      if (bad) yield { file: displayName, line, value: undefined, error: invalidUtf8Error(bad), bytes: bytesPerRow };
      else yield { file: displayName, line, value: toPlain(rows[i]) as Record<string, unknown>, bytes: bytesPerRow };
    }
    rowStart += n;
  }
}
