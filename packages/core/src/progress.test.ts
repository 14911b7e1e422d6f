// The progress bar's amounts, and the bar as a terminal shows it (a fake TTY stream).
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createProgressBar, formatAmount } from "./progress.js";

describe("progress bar", () => {
  it("shows bytes in kB/MB/GB and other units with the decimals their size needs", () => {
    expect([0, 999, 1500, 242_714_200, 9.26e9].map((v) => formatAmount(v, "B"))).toEqual(["0 B", "999 B", "1.5 kB", "242.7 MB", "9.26 GB"]);
    expect([0, 12, 0.25, 12.5, 321.7].map((v) => formatAmount(v, "rows"))).toEqual([
      "0 rows",
      "12 rows",
      "0.25 rows",
      "12.5 rows",
      "322 rows",
    ]);
  });

  it("draws label, bar, percentage, amounts and rate on a terminal", () => {
    let text = "";
    const stream = Object.assign(
      new Writable({
        write(chunk, _enc, done) {
          text += String(chunk);
          done();
        },
      }),
      { isTTY: true, columns: 200, cursorTo: () => true, clearLine: () => true, moveCursor: () => true },
    ) as unknown as NodeJS.WriteStream;
    const bar = createProgressBar(stream);
    bar.start(200_000, "curate", "B");
    bar.update(100_000);
    bar.stop();
    expect(text).toMatch(/curate \|[█░]{24}\| 50% 100\.0 kB \/ 200\.0 kB \| [\d.]+ (B|kB|MB)\/s \| ETA /);
  });
});
