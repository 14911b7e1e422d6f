// Arrow IPC reader through apache-arrow: both the file format (`.arrow` with the ARROW1 magic) and
// the stream format that the Hugging Face `datasets` library writes as `data-0000x-of-0000n.arrow`.
// Record batches are read one at a time.
import { createReadStream } from "node:fs";
import { RecordBatchReader } from "apache-arrow";
import { UserError } from "@owntune/model/core";
import { toPlain, type SourceRow } from "./source-row.js";
import { invalidUtf8Error, invalidUtf8Rows } from "./utf8-check.js";

/** Streams an Arrow IPC file or stream, batch by batch. */
export async function* readArrow(path: string, displayName = path): AsyncGenerator<SourceRow> {
  let reader;
  try {
    reader = await RecordBatchReader.from(createReadStream(path));
    await reader.open();
  } catch (e) {
    throw new UserError(`not a readable Arrow IPC file or stream (${(e as Error).message})`, { file: displayName });
  }
  let line = 0;
  for await (const batch of reader) {
    const names = batch.schema.fields.map((f) => f.name);
    const columns = names.map((_, c) => batch.getChildAt(c));
    const bytesPerRow = batch.data.byteLength / Math.max(batch.numRows, 1);
    const invalid = invalidUtf8Rows(batch);
    for (let i = 0; i < batch.numRows; i++) {
      const bad = invalid.get(i);
      if (bad) {
        line++;
        yield { file: displayName, line, value: undefined, error: invalidUtf8Error(bad), bytes: bytesPerRow };
        continue;
      }
      const value: Record<string, unknown> = {};
      for (let c = 0; c < names.length; c++) value[names[c]!] = toPlain(columns[c]?.get(i));
      line++;
      yield { file: displayName, line, value, bytes: bytesPerRow };
    }
  }
}
