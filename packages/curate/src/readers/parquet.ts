// Parquet reader (the format of Hugging Face Hub datasets) through hyparquet: reads one row group at a
// time from a file-backed buffer, so memory holds one row group, not the file. Snappy is built in;
// hyparquet-compressors adds gzip, zstd, brotli and lz4.
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type FileMetaData } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { UserError } from "@owntune/core";
import { toPlain, type SourceRow } from "./source-row.js";
import { findInvalidMarker, invalidUtf8Error, strictStringParsers } from "./utf8-check.js";

/** Streams a Parquet file's rows as plain objects, row group by row group. */
export async function* readParquet(path: string, displayName = path): AsyncGenerator<SourceRow> {
  const file = await asyncBufferFromFile(path);
  let metadata;
  try {
    // No GeoParquet marking: owntune reads text, and that pass loops forever on a negative num_children.
    metadata = await parquetMetadataAsync(file, { geoparquet: false });
  } catch (e) {
    // A TypeError or RangeError is the decoder's reaction to bytes it did not expect, not a message for users.
    const why = e instanceof TypeError || e instanceof RangeError ? "corrupt or truncated" : (e as Error).message;
    throw new UserError(`not a readable Parquet file (${why})`, { file: displayName });
  }
  // hyparquet starts reading some columns before it finds a chunk whose path is not in the schema,
  // and the rejections of those reads escape it (the process would die of an unhandled rejection).
  const missing = chunkOutsideSchema(metadata);
  if (missing)
    throw new UserError(`not a readable Parquet file (corrupt metadata: column chunk ${missing} is not in the schema)`, {
      file: displayName,
    });
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

/** The path of a row group's column chunk that the schema does not have, or undefined. */
function chunkOutsideSchema(metadata: FileMetaData): string | undefined {
  const bad = metadata.schema.find(
    (e) =>
      e.num_children !== undefined && !(Number.isInteger(e.num_children) && e.num_children >= 0 && e.num_children < metadata.schema.length),
  );
  if (bad) return `(schema element ${bad.name} has ${bad.num_children} children)`;
  let tree;
  try {
    tree = parquetSchema(metadata);
  } catch {
    return "(schema unreadable)";
  }
  for (const group of metadata.row_groups) {
    for (const chunk of group.columns) {
      const path = chunk.meta_data?.path_in_schema ?? [];
      let node = tree;
      for (const part of path) {
        const child = node.children.find((c) => c.element.name === part);
        if (!child) return path.join(".");
        node = child;
      }
    }
  }
  return undefined;
}
