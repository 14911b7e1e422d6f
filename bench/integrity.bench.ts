// What the integrity checks cost when a dataset shard is read for training: readShard alone (the
// Arrow metadata check included) against readShard checked against the manifest's size and sha256,
// side by side on the same 64 MiB shard, and the sha256 of its bytes on their own. The result is
// checked first: both reads give the same columns, and a flipped byte is refused.
//   pnpm bench integrity     (env: OWNTUNE_BENCH_INTEGRITY_MB=64)
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readShard, writeShard, type PackedRow } from "@owntune/curate";
import { isUserError } from "@owntune/core";

const SEQ_LEN = 2048;

function bestOf<T>(n: number, fn: () => Promise<T>): Promise<number> {
  return (async () => {
    let best = Infinity;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await fn();
      best = Math.min(best, performance.now() - t0);
    }
    return best / 1000;
  })();
}

export default async function integrityBench(): Promise<void> {
  const mb = Number(process.env.OWNTUNE_BENCH_INTEGRITY_MB ?? 64);
  const rows = Math.max(1, Math.round((mb * 2 ** 20) / (SEQ_LEN * 4 * 4)));
  const dir = mkdtempSync(join(tmpdir(), "owntune-bench-integrity-"));
  try {
    const packed: PackedRow[] = Array.from({ length: rows }, (_, r) => {
      const ids = Int32Array.from({ length: SEQ_LEN }, (_, t) => (r * 7919 + t * 31) % 262144);
      return {
        input_ids: ids,
        loss_mask: ids.map((v) => v & 1),
        position_ids: Int32Array.from({ length: SEQ_LEN }, (_, t) => t),
        segment_ids: new Int32Array(SEQ_LEN).fill(1),
        tokens: SEQ_LEN,
        documents: 1,
      };
    });
    const path = join(dir, "train-00000.arrow");
    const record = await writeShard(path, packed, SEQ_LEN);
    // Checked first: the same columns either way, and a flipped byte refused by the checked read only.
    const plain = await readShard(path, SEQ_LEN);
    const checked = await readShard(path, SEQ_LEN, record);
    if (!Buffer.from(plain.columns.input_ids.buffer).equals(Buffer.from(checked.columns.input_ids.buffer)) || plain.rows !== rows)
      throw new Error("the two reads differ");
    const bytes = readFileSync(path);
    bytes[bytes.length >> 1]! ^= 1;
    const flipped = join(dir, "flipped.arrow");
    writeFileSync(flipped, bytes);
    const refused = await readShard(flipped, SEQ_LEN, record).then(
      () => false,
      (e) => isUserError(e),
    );
    if (!refused) throw new Error("a flipped byte was not refused");

    const tPlain = await bestOf(5, () => readShard(path, SEQ_LEN));
    const tChecked = await bestOf(5, () => readShard(path, SEQ_LEN, record));
    const tHash = await bestOf(5, async () => createHash("sha256").update(readFileSync(path)).digest("hex"));
    const size = record.bytes / 2 ** 20;
    console.log(`shard: ${rows} rows × ${SEQ_LEN} tokens, ${size.toFixed(1)} MiB (best of 5)`);
    console.log(`readShard, metadata check only:    ${tPlain.toFixed(3)} s  ${(size / tPlain).toFixed(0)} MiB/s`);
    console.log(
      `readShard + size + sha256 check:    ${tChecked.toFixed(3)} s  ${(size / tChecked).toFixed(0)} MiB/s  (${(tChecked / tPlain).toFixed(2)}× the unchecked read)`,
    );
    console.log(`read + sha256 alone:                ${tHash.toFixed(3)} s  ${(size / tHash).toFixed(0)} MiB/s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
