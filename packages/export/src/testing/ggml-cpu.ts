// Test-only: ggml's CPU backend as node-llama-cpp 3.21.1 ships it, called through koffi: the fp16
// GELU table, the activation quantizers, and single ops (mul_mat, gelu, geglu) computed by ggml
// itself — the oracle for ggml-activations.ts. We load libggml-cpu-haswell.so, the build ggml picks
// on AVX2 machines (the AVX-512 builds run the same activation code: arch/x86/quants.c, vec.h).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import koffi from "koffi";
import { ggmlBaseLibraryPath } from "../quant/ggml-oracle.js";

export interface GgmlCpu {
  /** ggml_table_gelu_f16 after ggml_cpu_init: fp16 bits of gelu(h) for every fp16 h. */
  geluTable(): Uint16Array;
  /** quantize_row_q8_0 / quantize_row_q8_K on one row: the bytes. */
  quantizeRow(kind: "q8_0" | "q8_K", x: Float32Array): Uint8Array;
  /** ggml_mul_mat(W, x): W of ggml `type` [outF rows of inF] from its bytes, x [rows, inF] → [rows, outF]. */
  mulMat(type: number, weight: Uint8Array, inF: number, outF: number, x: Float32Array, rows: number): Float32Array;
  /** ggml_gelu on a row. */
  gelu(x: Float32Array): Float32Array;
  /** ggml_geglu_split(x, g): gelu(x)·g. */
  geglu(x: Float32Array, g: Float32Array): Float32Array;
}

/** Whether this CPU runs the haswell build (x86-64 with AVX2, FMA, F16C, BMI2). */
function cpuRunsHaswellBuild(): boolean {
  if (process.platform !== "linux" || process.arch !== "x64" || !existsSync("/proc/cpuinfo")) return false;
  const flags = new Set(/^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim().split(/\s+/) ?? []);
  return ["avx2", "fma", "f16c", "bmi2"].every((f) => flags.has(f));
}

let cached: GgmlCpu | null | undefined;

/** ggml's CPU backend, or null where its AVX2 build cannot run (then the oracle tests are skipped). */
export function loadGgmlCpu(): GgmlCpu | null {
  if (cached !== undefined) return cached;
  const cpuPath = join(dirname(ggmlBaseLibraryPath()), "libggml-cpu-haswell.so");
  if (!cpuRunsHaswellBuild() || !existsSync(cpuPath)) return (cached = null);
  const base = koffi.load(ggmlBaseLibraryPath());
  const cpu = koffi.load(cpuPath);
  cpu.func("void ggml_cpu_init()")();
  const params = koffi.struct("owntune_ggml_init_params", { mem_size: "size_t", mem_buffer: "void *", no_alloc: "bool" });
  const init = base.func("void * ggml_init(owntune_ggml_init_params params)");
  const free = base.func("void ggml_free(void * ctx)");
  const newTensor2d = base.func("void * ggml_new_tensor_2d(void * ctx, int type, int64_t ne0, int64_t ne1)");
  const getData = base.func("void * ggml_get_data(void * tensor)");
  const rowSize = base.func("size_t ggml_row_size(int type, int64_t ne)");
  const mulMat = base.func("void * ggml_mul_mat(void * ctx, void * a, void * b)");
  const gelu = base.func("void * ggml_gelu(void * ctx, void * a)");
  const geglu = base.func("void * ggml_geglu_split(void * ctx, void * a, void * b)");
  const newGraph = base.func("void * ggml_new_graph(void * ctx)");
  const expand = base.func("void ggml_build_forward_expand(void * graph, void * tensor)");
  const compute = cpu.func("int ggml_graph_compute_with_ctx(void * ctx, void * graph, int n_threads)");
  const q8_0 = cpu.func("void quantize_row_q8_0(const float * x, _Out_ uint8_t * y, int64_t k)");
  const q8_K = cpu.func("void quantize_row_q8_K(const float * x, _Out_ uint8_t * y, int64_t k)");
  const F32 = 0;

  /** Builds tensors in a fresh context, computes `out`, returns its float32 values. */
  const run = (
    build: (ctx: unknown, tensor: (type: number, ne0: number, ne1: number, bytes: Uint8Array) => unknown) => unknown,
    n: number,
  ): Float32Array => {
    const ctx = init({ mem_size: 256 * 2 ** 20, mem_buffer: null, no_alloc: false });
    try {
      const out = build(ctx, (type, ne0, ne1, bytes) => {
        const t = newTensor2d(ctx, type, ne0, ne1);
        const size = Number(rowSize(type, ne0)) * ne1;
        if (size !== bytes.length) throw new Error(`tensor of ${size} bytes given ${bytes.length}`);
        new Uint8Array(koffi.view(getData(t), size)).set(bytes);
        return t;
      });
      const graph = newGraph(ctx);
      expand(graph, out);
      const status = compute(ctx, graph, 1) as number;
      if (status !== 0) throw new Error(`ggml_graph_compute_with_ctx returned ${status}`);
      return new Float32Array(koffi.view(getData(out), 4 * n).slice(0));
    } finally {
      free(ctx);
    }
  };
  const bytesOf = (x: Float32Array) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength);

  cached = {
    geluTable: () =>
      Uint16Array.from(
        koffi.decode(cpu.symbol("ggml_table_gelu_f16", koffi.array("uint16_t", 65536)), koffi.array("uint16_t", 65536)) as number[],
      ),
    quantizeRow(kind, x) {
      const out = new Uint8Array(Number(rowSize(kind === "q8_0" ? 8 : 15, x.length)));
      (kind === "q8_0" ? q8_0 : q8_K)(x, out, x.length);
      return out;
    },
    mulMat: (type, weight, inF, outF, x, rows) =>
      run((ctx, tensor) => mulMat(ctx, tensor(type, inF, outF, weight), tensor(F32, inF, rows, bytesOf(x))), rows * outF),
    gelu: (x) => run((ctx, tensor) => gelu(ctx, tensor(F32, x.length, 1, bytesOf(x))), x.length),
    geglu: (x, g) => run((ctx, tensor) => geglu(ctx, tensor(F32, x.length, 1, bytesOf(x)), tensor(F32, g.length, 1, bytesOf(g))), x.length),
  };
  return cached;
}
