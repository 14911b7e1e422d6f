import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserError } from "./errors.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./float-convert.js";
import { MAX_HEADER_BYTES, SafetensorsFile, withSafetensors, writeSafetensors, type TensorToWrite } from "./safetensors.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "owntune-st-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A safetensors file built byte by byte: length prefix (u64 LE, overridable), header text, data. */
function build(header: string | object, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): Uint8Array {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const body = Buffer.from(text, "utf8");
  const out = new Uint8Array(8 + body.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(body.length), true);
  out.set(body, 8);
  out.set(data, 8 + body.length);
  return out;
}

async function openError(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  try {
    const f = await SafetensorsFile.open(path);
    await f.close();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format().replace(path, "F");
  }
  throw new Error("expected open to fail");
}

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(seed * 1000 + i * 0.37) * 10 ** ((i % 7) - 3);
  out[0] = -0;
  return out;
}

describe("writeSafetensors → SafetensorsFile round trip", () => {
  it.each(["F32", "F16", "BF16"] as const)("keeps %s values exactly as the converter rounds them", async (dtype) => {
    const path = join(dir, `rt-${dtype}.safetensors`);
    const tensors: TensorToWrite[] = [
      { name: "a.weight", dtype, shape: [3, 5] },
      { name: "b", dtype, shape: [] },
      { name: "c.empty", dtype, shape: [0, 4] },
      { name: "d.big", dtype, shape: [2_100_000] }, // spans several decode chunks
    ];
    const data = tensors.map((t, i) =>
      values(
        t.shape.reduce((a, b) => a * b, 1),
        i,
      ),
    );
    let calls = 0;
    await writeSafetensors(path, tensors, (_t, i) => (calls++, data[i]!), { metadata: { format: "pt" } });
    expect(calls).toBe(4);
    await withSafetensors(path, async (f) => {
      expect(f.metadata).toEqual({ format: "pt" });
      expect(f.names()).toEqual(tensors.map((t) => t.name));
      for (const [i, t] of tensors.entries()) {
        expect(f.entry(t.name).shape).toEqual(t.shape);
        expect(f.entry(t.name).dtype).toBe(dtype);
        const want = dtype === "F32" ? data[i]! : dtype === "BF16" ? bf16ToF32(f32ToBf16(data[i]!)) : f16ToF32(f32ToF16(data[i]!));
        const got = await f.read(t.name);
        expect(got.length).toBe(want.length);
        expect(Buffer.from(got.buffer).equals(Buffer.from(want.buffer)), `${t.name} differs`).toBe(true);
      }
      // Rows of a 2-D tensor come out as the matching slice of the whole.
      const all = await f.read("a.weight");
      expect(Array.from(await f.readRows("a.weight", 1, 2))).toEqual(Array.from(all.subarray(5, 15)));
      // Raw bytes are what the converter produced.
      const raw = await f.readRaw("a.weight");
      const expectRaw =
        dtype === "F32" ? new Uint8Array(data[0]!.buffer) : new Uint8Array((dtype === "BF16" ? f32ToBf16 : f32ToF16)(data[0]!).buffer);
      expect(Buffer.from(raw).equals(Buffer.from(expectRaw))).toBe(true);
    });
  });

  it("writes the header padded so the data section starts 8-byte aligned, offsets contiguous", async () => {
    const path = join(dir, "aligned.safetensors");
    await writeSafetensors(
      path,
      [
        { name: "x", dtype: "BF16", shape: [3] },
        { name: "y", dtype: "F32", shape: [1] },
      ],
      () => new Float32Array(0),
    ).catch(() => undefined);
    // That producer returned the wrong length: the write failed and left no file behind.
    expect((await readdir(dir)).filter((n) => n.startsWith("aligned") || n.startsWith(".aligned"))).toEqual([]);
    await writeSafetensors(
      path,
      [
        { name: "x", dtype: "BF16", shape: [3] },
        { name: "y", dtype: "F32", shape: [1] },
      ],
      (t) => (t.name === "x" ? new Float32Array([1, 2, 3]) : new Float32Array([4])),
    );
    await withSafetensors(path, async (f) => {
      expect(f.entry("x").begin % 8).toBe(0);
      expect(f.entry("y").begin).toBe(f.entry("x").end);
      expect(f.entry("y").end).toBe(f.size);
      expect(Array.from(await f.read("x"))).toEqual([1, 2, 3]);
    });
  });

  it("writes chunks from an async producer one at a time, asking for the next only after the last is written", async () => {
    const path = join(dir, "async.safetensors");
    const whole = values(10_000, 3);
    const asked: number[] = [];
    async function* chunks(): AsyncGenerator<Float32Array> {
      for (let i = 0; i < whole.length; i += 3_000) {
        asked.push(i);
        await new Promise((r) => setImmediate(r));
        yield whole.slice(i, i + 3_000);
      }
    }
    await writeSafetensors(path, [{ name: "w", dtype: "BF16", shape: [100, 100] }], () => chunks());
    expect(asked).toEqual([0, 3_000, 6_000, 9_000]);
    await withSafetensors(path, async (f) => expect(Array.from(await f.read("w"))).toEqual(Array.from(bf16ToF32(f32ToBf16(whole)))));
    async function* short(): AsyncGenerator<Float32Array> {
      yield whole.slice(0, 10);
    }
    await expect(writeSafetensors(path, [{ name: "w", dtype: "F32", shape: [100, 100] }], () => short())).rejects.toThrow(
      "tensor w: produced 10 values, shape [100, 100] needs 10000",
    );
  });

  it("copies producer bytes as they are when given a Uint8Array", async () => {
    const path = join(dir, "raw.safetensors");
    const bytes = new Uint8Array([0x80, 0x3f, 0x00, 0xc0]); // bf16 1.0, -2.0
    await writeSafetensors(path, [{ name: "r", dtype: "BF16", shape: [2] }], () => bytes);
    await withSafetensors(path, async (f) => expect(Array.from(await f.read("r"))).toEqual([1, -2]));
  });
});

describe("SafetensorsFile.open rejects malformed files with a message naming the file and tensor", () => {
  const f32 = (n: number) => new Uint8Array(4 * n);
  const cases: Array<[string, Uint8Array, string]> = [
    [
      "shorter than the length prefix",
      new Uint8Array([1, 2, 3]),
      "F: file is 3 bytes, too short for a safetensors header (8-byte length, then JSON)",
    ],
    [
      "header length past the cap",
      build("{}", new Uint8Array(0), BigInt(MAX_HEADER_BYTES + 1)),
      `F: header length ${MAX_HEADER_BYTES + 1} bytes exceeds the 100000000-byte limit of the safetensors format; the file is corrupt or not safetensors`,
    ],
    [
      "header length past the end (truncated header)",
      build('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}').subarray(0, 30),
      "F: header length 54 bytes runs past the end of the file (30 bytes); the file is truncated",
    ],
    ["bad JSON", build('{"a": {"dtype": "F32",'), "F: header is not valid UTF-8 JSON; the file is corrupt or not safetensors"],
    ["a JSON array", build("[]"), "F: header is not a JSON object"],
    [
      "offsets out of range (truncated data)",
      build({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32(3)),
      "F: tensor w: data_offsets [0, 16] run past the end of the data section (12 bytes); the file is truncated or its header is wrong",
    ],
    [
      "overlapping offsets",
      build({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] }, b: { dtype: "F32", shape: [2], data_offsets: [8, 16] } }, f32(4)),
      "F: tensors a and b overlap: data_offsets [0, 16] and [8, 16]",
    ],
    [
      "wrong byte length",
      build({ w: { dtype: "BF16", shape: [2, 3], data_offsets: [0, 16] } }, f32(4)),
      "F: tensor w: data_offsets [0, 16] hold 16 bytes, but shape [2, 3] of BF16 needs 12",
    ],
    [
      "unknown dtype",
      build({ w: { dtype: "F12", shape: [1], data_offsets: [0, 2] } }, f32(1)),
      'F: tensor w: unknown dtype "F12" (known: F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2)',
    ],
    [
      "negative dimension",
      build({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 4] } }, f32(1)),
      "F: tensor w: shape must be a list of non-negative integers, got [2,-1]",
    ],
    [
      "absurd rank",
      build({ w: { dtype: "U8", shape: [1, 1, 1, 1, 1, 1, 1, 1, 1], data_offsets: [0, 1] } }, f32(1)),
      "F: tensor w: shape [1, 1, 1, 1, 1, 1, 1, 1, 1] has rank 9, more than 8",
    ],
    [
      "element count beyond what can be addressed",
      build({ w: { dtype: "F64", shape: [2 ** 30, 2 ** 30], data_offsets: [0, 4] } }, f32(1)),
      "F: tensor w: shape [1073741824, 1073741824] is too large",
    ],
    [
      "reversed offsets",
      build({ w: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, f32(1)),
      "F: tensor w: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got [4,0]",
    ],
    ["non-string metadata", build({ __metadata__: { format: "pt", step: 3 } }), "F: __metadata__.step must be a string, got 3"],
  ];
  it.each(cases)("%s", async (label, bytes, message) => {
    expect(await openError(label.replace(/\W+/g, "-") + ".safetensors", bytes)).toBe(message);
  });

  it("reports a missing file as a UserError", async () => {
    await expect(SafetensorsFile.open(join(dir, "nope.safetensors"))).rejects.toThrow(UserError);
  });

  it("lists integer dtypes but refuses to decode them to float32", async () => {
    const path = join(dir, "int.safetensors");
    await writeFile(path, build({ ids: { dtype: "I32", shape: [2], data_offsets: [0, 8] } }, f32(2)));
    await withSafetensors(path, async (f) => {
      expect(f.entry("ids").dtype).toBe("I32");
      expect((await f.readRaw("ids")).byteLength).toBe(8);
      await expect(f.read("ids")).rejects.toThrow("tensor ids has dtype I32; owntune decodes F32, F16, BF16 to float32");
    });
  });
});
