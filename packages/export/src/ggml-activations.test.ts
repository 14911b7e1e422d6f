// Our copy of ggml's CPU arithmetic against ggml itself (libggml-cpu from node-llama-cpp, through FFI):
// the activation rounding bit for bit, the fp16 GELU table entry for entry, and whole quantized
// products: deq(W)·round(x) must equal ggml's mul_mat to float32 summation noise, for every weight type.
import * as tf from "@tensorflow/tfjs";
import { f16BitsToF32, seededRandom } from "@owntune/core";
import { oracle } from "@owntune/core/testing";
import { initBackend } from "@owntune/model";
import { beforeAll, describe, expect, it } from "vitest";
import { activationRounding, ggmlGelu, ggmlGeluRows, ggmlGeluTable, roundActivationRows, roundActivations } from "./ggml-activations.js";
import { GgmlType, ggmlTypeName } from "./quant/ggml-types.js";
import { dequantizeTensor, quantizeTensor } from "./quant/quantize.js";
import { loadGgmlCpu } from "./testing/ggml-cpu.js";

const ggml = loadGgmlCpu();
const rng = seededRandom(11, "ggml-activations");
const gauss = () => Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
const row = (n: number, f: (i: number) => number) => Float32Array.from({ length: n }, (_, i) => f(i));

/** Activation rows (256 values: 8 Q8_0 blocks, one Q8_K block) that stress the rounding. */
const ROWS: Record<string, Float32Array> = {
  zeros: row(256, () => 0),
  gaussian: row(256, () => gauss()),
  "ties (x·127/amax = k + ½)": row(256, (i) => (i % 32 === 0 ? 127 : (i % 7) - 3.5)),
  "negative max": row(256, (i) => (i === 3 ? -50 : gauss())),
  "max of both signs": row(256, (i) => (i === 9 ? 4 : i === 200 ? -4 : gauss())),
  "tiny (fp16-subnormal scale)": row(256, () => gauss() * 1e-5),
  "huge (1e4)": row(256, () => gauss() * 1e4),
  "one outlier": row(256, (i) => (i === 77 ? 60 : gauss() * 0.01)),
  "sparse (80% zeros)": row(256, () => (rng() < 0.8 ? 0 : gauss())),
};

/** ggml's block bytes read back as float32: Q8_0 = fp16 d + 32 int8, Q8_K = f32 d + 256 int8 + 16 int16 sums. */
function dequantizeActivations(kind: "q8_0" | "q8_K", bytes: Uint8Array, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  const [block, stride] = kind === "q8_0" ? [32, 34] : [256, 292];
  for (let b = 0; b < n / block; b++) {
    const d = kind === "q8_0" ? f16BitsToF32(view.getUint16(b * stride, true)) : view.getFloat32(b * stride, true);
    const qOffset = b * stride + (kind === "q8_0" ? 2 : 4);
    for (let j = 0; j < block; j++) out[b * block + j] = Math.fround(d * view.getInt8(qOffset + j));
  }
  return out;
}

const haveGgmlCpu = oracle({
  name: "libggml-cpu (haswell build)",
  found: ggml !== null,
  missing: "not an x86-64 CPU with AVX2, FMA, F16C and BMI2, or node-llama-cpp's build is not installed",
  tests: "export's ggml-activations.test.ts",
});

describe.skipIf(!haveGgmlCpu)("ggml's CPU arithmetic, copied", () => {
  it.each(["q8_0", "q8_K"] as const)("rounds activations to %s exactly as ggml's quantize_row does", (kind) => {
    for (const [name, x] of Object.entries(ROWS)) {
      const want = dequantizeActivations(kind, ggml!.quantizeRow(kind, x), x.length);
      const got = Float32Array.from(x);
      roundActivationRows(got, x.length, kind);
      const bad = got.findIndex((v, i) => !Object.is(v + 0, want[i]! + 0));
      expect(bad, `${name}: value ${bad}: ours ${got[bad]}, ggml ${want[bad]} (input ${x[bad]})`).toBe(-1);
    }
  });

  it("has ggml's fp16 GELU table, and ggml's GELU and GEGLU ops on either side of ±10", () => {
    const want = ggml!.geluTable();
    const ours = ggmlGeluTable();
    let mismatches = 0;
    for (let h = 0; h < 65536; h++) {
      const w = f16BitsToF32(want[h]!);
      if (!Number.isNaN(w) && !Object.is(ours[h]! + 0, w + 0)) mismatches++;
    }
    expect(mismatches).toBe(0);
    const x = Float32Array.from([
      -12,
      -10,
      -9.999,
      -3.3,
      -1e-6,
      0,
      6e-8,
      0.5,
      1.0009765625,
      2.71828,
      9.999,
      10,
      10.5,
      40,
      ...row(500, () => gauss() * 4),
    ]);
    const g = row(x.length, () => gauss());
    const gelu = Float32Array.from(x);
    ggmlGeluRows(gelu);
    expect(Array.from(gelu)).toEqual(Array.from(ggml!.gelu(x)));
    const geglu = gelu.map((v, i) => Math.fround(v * g[i]!));
    expect(Array.from(geglu, (v) => v + 0)).toEqual(Array.from(ggml!.geglu(x, g), (v) => v + 0)); // ggml writes +0 below −10, we write 0·g
  });

  describe("quantized products", () => {
    beforeAll(async () => {
      await initBackend();
    });
    const TYPES = [
      GgmlType.Q8_0,
      GgmlType.Q4_0,
      GgmlType.Q5_0,
      GgmlType.Q5_1,
      GgmlType.Q4_K,
      GgmlType.Q5_K,
      GgmlType.Q6_K,
      GgmlType.F16,
      GgmlType.BF16,
    ];
    it.each(TYPES.map((t) => [ggmlTypeName(t), t] as const))("%s: deq(W)·round(x) is ggml's mul_mat; deq(W)·x is not", (_, type) => {
      const [inF, outF, rows] = [512, 24, 5];
      const w = row(inF * outF, () => gauss() * 0.05);
      const bytes = quantizeTensor(type, w, inF);
      const wq = dequantizeTensor(type, bytes, w.length);
      const x = row(rows * inF, (i) => (i % 97 === 0 ? 8 : gauss()));
      const want = ggml!.mulMat(type, bytes, inF, outF, x, rows);
      const rounded = tf.tidy(() => roundActivations(tf.tensor2d(x, [rows, inF]), activationRounding(type)).dataSync());
      const product = (a: ArrayLike<number>) =>
        Float64Array.from({ length: rows * outF }, (_, k) => {
          const [r, o] = [Math.floor(k / outF), k % outF];
          let s = 0;
          for (let i = 0; i < inF; i++) s += wq[o * inF + i]! * a[r * inF + i]!;
          return s;
        });
      const scale = Math.sqrt(want.reduce((s, v) => s + v * v, 0) / want.length);
      const err = (p: Float64Array) => Math.max(...p.map((v, k) => Math.abs(v - want[k]!))) / scale;
      const emulated = err(product(rounded));
      const plain = err(product(x));
      console.log(
        `${ggmlTypeName(type)}: max |ours − ggml| / rms = ${emulated.toExponential(2)} with the rounding, ${plain.toExponential(2)} without`,
      );
      if (activationRounding(type) === "q8_1") {
        // Q8_1's block sum fp16(d·Σq) feeds the weight's min term; we do not copy it (≈ 2^-12 of that term).
        expect(emulated).toBeLessThan(2e-3);
        expect(plain).toBeGreaterThan(10 * emulated);
      } else {
        expect(emulated).toBeLessThan(5e-6); // float32 summation order in ggml
        expect(plain).toBeGreaterThan(50 * emulated);
      }
    });
  });

  it("ggmlGelu on a tensor is the table applied element-wise", async () => {
    await initBackend();
    const x = row(300, () => gauss() * 3);
    const want = Float32Array.from(x);
    ggmlGeluRows(want);
    const got = tf.tidy(() => ggmlGelu(tf.tensor2d(x, [3, 100])).dataSync());
    expect(Array.from(got)).toEqual(Array.from(want));
  });
});
