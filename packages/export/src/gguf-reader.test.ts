// Malformed GGUF files built byte by byte: each is a UserError with an exact message, never a crash
// or an allocation sized by the corrupt field.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "@owntune/core";
import { afterAll, describe, expect, it } from "vitest";
import { readGgufHeader } from "./gguf-reader.js";

const dir = mkdtempSync(join(tmpdir(), "owntune-gguf-bad-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Little-endian byte builder, independent of the writer under test. */
class B {
  parts: number[] = [];
  u8(v: number) {
    this.parts.push(v & 0xff);
    return this;
  }
  u32(v: number) {
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: number | bigint) {
    let x = BigInt(v);
    for (let i = 0; i < 8; i++) {
      this.parts.push(Number(x & 0xffn));
      x >>= 8n;
    }
    return this;
  }
  str(s: string) {
    const b = Buffer.from(s);
    this.u64(b.length);
    this.parts.push(...b);
    return this;
  }
  raw(bytes: number[]) {
    this.parts.push(...bytes);
    return this;
  }
  zeros(n: number) {
    for (let i = 0; i < n; i++) this.parts.push(0);
    return this;
  }
  bytes() {
    return Buffer.from(this.parts);
  }
}

const header = (tensors: number, kvs: number) => new B().raw([0x47, 0x47, 0x55, 0x46]).u32(3).u64(tensors).u64(kvs);

let n = 0;
async function errorOf(bytes: Buffer): Promise<UserError> {
  const file = join(dir, `bad-${n++}.gguf`);
  writeFileSync(file, bytes);
  try {
    await readGgufHeader(file);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).file).toBe(file);
    return e as UserError;
  }
  throw new Error("expected a UserError");
}

/** One tensor `w` of 32 F32 values, with a chosen offset and data length. */
const oneTensor = (offset: number, dataBytes: number) =>
  header(1, 0)
    .str("w")
    .u32(1)
    .u64(32)
    .u32(0)
    .u64(offset)
    .zeros(32 - ((24 + 8 + 1 + 4 + 8 + 4 + 8) % 32))
    .zeros(dataBytes);

describe("readGgufHeader on malformed files", () => {
  it.each([
    ["an empty file", Buffer.alloc(0), "not a GGUF file: 0 byte(s), too short for the magic"],
    [
      "a wrong magic",
      new B().raw([0x47, 0x47, 0x4d, 0x4c]).u32(3).bytes(),
      'not a GGUF file: magic is "GGML" (0x4c4d4747), expected "GGUF"',
    ],
    [
      "version 2",
      new B().raw([0x47, 0x47, 0x55, 0x46]).u32(2).u64(0).u64(0).bytes(),
      "GGUF version 2 is not supported; this reader reads version 3",
    ],
    [
      "a big-endian version",
      new B().raw([0x47, 0x47, 0x55, 0x46]).u32(0x03000000).bytes(),
      "GGUF version 50331648 looks byte-swapped: big-endian files are not supported",
    ],
    [
      "a file cut after the version",
      new B().raw([0x47, 0x47, 0x55, 0x46]).u32(3).bytes(),
      "truncated: tensor count needs 8 byte(s) at offset 8, but the file ends at 8",
    ],
    ["a tensor count past the cap", header(2 ** 40, 0).bytes(), "tensor count is 1099511627776, past the cap of 65536"],
    [
      "a tensor count the file cannot hold",
      header(1000, 0).bytes(),
      "truncated: tensor count is 1000, which needs at least 32000 more bytes, but only 8 remain",
    ],
    [
      "a key length past the cap",
      header(0, 1)
        .u64(2 ** 40)
        .zeros(8)
        .bytes(),
      "metadata key 0: string length is 1099511627776, past the cap of 65535",
    ],
    [
      "a string value longer than the file",
      header(0, 1).str("a.b").u32(8).u64(500).raw([1, 2, 3]).bytes(),
      "truncated: key a.b: string length is 500, which needs at least 500 more bytes, but only 3 remain",
    ],
    [
      "an array length past the cap",
      header(0, 1)
        .str("a.b")
        .u32(9)
        .u32(4)
        .u64(2 ** 31)
        .bytes(),
      "key a.b: array length is 2147483648, past the cap of 1073741824",
    ],
    [
      "an array longer than the file",
      header(0, 1).str("a.b").u32(9).u32(4).u64(1_000_000).zeros(16).bytes(),
      "truncated: key a.b: array length is 1000000, which needs at least 4000000 more bytes, but only 16 remain",
    ],
    [
      "a nested array",
      header(0, 1).str("a.b").u32(9).u32(9).u64(1).bytes(),
      "key a.b: nested arrays are not allowed (llama.cpp rejects them)",
    ],
    ["an unknown value type", header(0, 1).str("a.b").u32(13).bytes(), "key a.b: unknown value type 13"],
    ["a duplicate key", header(0, 2).str("a.b").u32(4).u32(1).str("a.b").u32(4).u32(2).bytes(), "duplicate metadata key a.b"],
    ["an empty key", header(0, 1).str("").u32(4).u32(1).bytes(), "metadata key 0 is empty"],
    ["invalid UTF-8 in a key", header(0, 1).u64(2).raw([0xc3, 0x28]).u32(4).u32(1).bytes(), "metadata key 0 is not valid UTF-8"],
    [
      "a u64 alignment",
      header(0, 1).str("general.alignment").u32(10).u64(64).bytes(),
      "general.alignment must be a u32 power of two, got u64 64",
    ],
    [
      "an alignment that is not a power of two",
      header(0, 1).str("general.alignment").u32(4).u32(48).bytes(),
      "general.alignment must be a u32 power of two, got u32 48",
    ],
    [
      "a file cut inside a key",
      header(0, 1).u64(10).raw([0x61, 0x62, 0x63, 0x64, 0x65]).bytes(),
      "truncated: metadata key 0: string length is 10, which needs at least 10 more bytes, but only 5 remain",
    ],
    ["five dims", header(1, 0).str("w").u32(5).zeros(64).bytes(), "tensor w: n_dims is 5, expected 1 to 4"],
    [
      "an invalid ggml type",
      header(1, 0).str("w").u32(1).u64(32).u32(99).u64(0).zeros(64).bytes(),
      "tensor w: ggml type 99 is not a valid type (ggml knows 0 to 42)",
    ],
    [
      "a row that splits a block",
      header(1, 0).str("w").u32(1).u64(30).u32(8).u64(0).zeros(64).bytes(),
      "tensor w: ne[0] = 30 is not a multiple of Q8_0's block size 32",
    ],
    ["a gap before the first tensor", oneTensor(64, 200).bytes(), "tensor 'w' has offset 64, expected 0"],
    [
      "tensor data past the end of the file",
      oneTensor(0, 100).bytes(),
      "truncated: tensor w data ends at 192, past the end of the file (164 bytes)",
    ],
    [
      "a dimension too large to count",
      header(1, 0)
        .str("w")
        .u32(2)
        .u64(2 ** 40)
        .u64(2 ** 40)
        .u32(0)
        .u64(0)
        .zeros(64)
        .bytes(),
      "tensor w: 1099511627776 × 1099511627776 elements overflow",
    ],
  ])("reports %s", async (_, bytes, message) => {
    const e = await errorOf(bytes);
    expect(e.message).toBe(message);
  });

  it("reads a minimal valid file", async () => {
    const file = join(dir, "ok.gguf");
    writeFileSync(file, oneTensor(0, 128).bytes());
    const h = await readGgufHeader(file);
    expect(h.tensors).toEqual([{ name: "w", ne: [32], type: 0, offset: 0, nbytes: 128 }]);
    expect(h.dataOffset).toBe(64);
  });
});
