// ggml's CPU libraries as node-llama-cpp 3.21.1 ships them prebuilt (libggml-base plus one CPU library
// per instruction-set variant), found inside the installed node-llama-cpp and bound through the koffi FFI.
// The variant is the one ggml's own loader would pick: each exports `ggml_backend_score`, the highest
// wins (ggml/src/ggml-backend-reg.cpp, ggml_backend_load_best). Headers: ggml/include/ggml*.h, v0.4.0.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { isMainThread } from "node:worker_threads";
import koffi from "koffi";

/** An opaque C pointer as koffi hands it over. */
export type Ptr = unknown;

type Fn = (...args: never[]) => unknown;

/** Environment variable naming a folder to load the ggml libraries from instead of node-llama-cpp's. */
export const GGML_DIR_ENV = "OWNTUNE_GGML_DIR";

/** The functions of libggml-base owntune calls (also what a quantizing worker thread needs). */
export interface GgmlBase {
  readonly path: string;
  quantizeChunk(
    type: number,
    src: Float32Array,
    dst: Uint8Array | bigint,
    start: number,
    nrows: number,
    nPerRow: number,
    imatrix: null,
  ): number;
  rowSize(type: number, ne: number): number;
  init(params: { mem_size: number; mem_buffer: null; no_alloc: boolean }): Ptr;
  free(ctx: Ptr): void;
  reset(ctx: Ptr): void;
  tensorOverhead(): number;
  graphOverhead(): number;
  newTensor2d(ctx: Ptr, type: number, ne0: number, ne1: number): Ptr;
  getData(t: Ptr): Ptr;
  nbytes(t: Ptr): number;
  setInput(t: Ptr): void;
  setOutput(t: Ptr): void;
  mulMat(ctx: Ptr, a: Ptr, b: Ptr): Ptr;
  transpose(ctx: Ptr, a: Ptr): Ptr;
  cpy(ctx: Ptr, a: Ptr, b: Ptr): Ptr;
  cont(ctx: Ptr, a: Ptr): Ptr;
  view2d(ctx: Ptr, a: Ptr, ne0: number, ne1: number, nb1: number, offset: number): Ptr;
  scale(ctx: Ptr, a: Ptr, s: number): Ptr;
  tanh(ctx: Ptr, a: Ptr): Ptr;
  softMax(ctx: Ptr, a: Ptr): Ptr;
  mul(ctx: Ptr, a: Ptr, b: Ptr): Ptr;
  sub(ctx: Ptr, a: Ptr, b: Ptr): Ptr;
  sqr(ctx: Ptr, a: Ptr): Ptr;
  argmax(ctx: Ptr, a: Ptr): Ptr;
  getRows(ctx: Ptr, a: Ptr, ids: Ptr): Ptr;
  cast(ctx: Ptr, a: Ptr, type: number): Ptr;
  newGraph(ctx: Ptr): Ptr;
  buildForwardExpand(graph: Ptr, t: Ptr): void;
  tensorSet(t: Ptr, data: Uint8Array, offset: number, size: number): void;
  allocCtxTensorsFromBuft(ctx: Ptr, buft: Ptr): Ptr;
  bufferFree(buffer: Ptr): void;
  cpuBufferType(): Ptr;
  buftName(buft: Ptr): string;
  gallocrNew(buft: Ptr): Ptr;
  gallocrAllocGraph(galloc: Ptr, graph: Ptr): boolean;
  gallocrFree(galloc: Ptr): void;
  graphCompute(backend: Ptr, graph: Ptr): number;
  backendFree(backend: Ptr): void;
  regDevGet(reg: Ptr, index: number): Ptr;
  regGetProcAddress(reg: Ptr, name: string): Ptr;
  threadpoolParamsDefault(nThreads: number): Record<string, unknown>;
  logSet(callback: unknown, user: null): void;
}

/** The functions of the chosen CPU library. */
export interface GgmlCpu {
  readonly path: string;
  /** The variant's name: `haswell`, `skylakex`, `zen4`, … (the file name's suffix). */
  readonly variant: string;
  backendInit(): Ptr;
  setThreadpool(backend: Ptr, threadpool: Ptr): void;
  setNThreads(backend: Ptr, n: number): void;
  threadpoolNew(params: Record<string, unknown>): Ptr;
  threadpoolFree(threadpool: Ptr): void;
  reg(): Ptr;
  hasAvx2(): boolean;
}

export interface GgmlLibraries {
  dir: string;
  /** llama.cpp release the libraries were built from (node-llama-cpp's build metadata), e.g. `v0.4.0`. */
  release: string;
  base: GgmlBase;
  cpu: GgmlCpu;
}

/** What `loadGgml` found: the libraries, or why not (a short clause for the start banner). */
export type GgmlLoad = { ok: true; libs: GgmlLibraries } | { ok: false; reason: string };

/** Folder of node-llama-cpp's prebuilt libraries for this platform, or a reason it is absent. */
export function nodeLlamaCppBinDir(): { dir: string } | { reason: string } {
  try {
    const fromHere = createRequire(import.meta.url);
    const fromLlama = createRequire(fromHere.resolve("node-llama-cpp"));
    const pkg = `@node-llama-cpp/${process.platform}-${process.arch}`;
    const root = dirname(dirname(fromLlama.resolve(pkg))); // <pkg>/dist/index.js → <pkg>
    return { dir: join(root, "bins", `${process.platform}-${process.arch}`) };
  } catch {
    return { reason: `node-llama-cpp has no prebuilt binaries for ${process.platform}-${process.arch}` };
  }
}

const LIB_EXT = process.platform === "win32" ? ".dll" : process.platform === "darwin" ? ".dylib" : ".so";
const LIB_PREFIX = process.platform === "win32" ? "" : "lib";

/** The folder to load from: OWNTUNE_GGML_DIR, else node-llama-cpp's binaries. */
function libraryDir(): { dir: string } | { reason: string } {
  const forced = process.env[GGML_DIR_ENV];
  return forced ? { dir: forced } : nodeLlamaCppBinDir();
}

let baseCache: GgmlBase | { reason: string } | undefined;
let fullCache: GgmlLoad | undefined;

/** libggml-base alone (quantizers, tensors, graphs): what a worker thread needs. Cached per process. */
export function loadGgmlBase(): GgmlBase | { reason: string } {
  if (baseCache) return baseCache;
  const where = libraryDir();
  if ("reason" in where) return (baseCache = where);
  const path = join(where.dir, `${LIB_PREFIX}ggml-base${LIB_EXT}`);
  if (!existsSync(path)) return (baseCache = { reason: `no ${LIB_PREFIX}ggml-base${LIB_EXT} in ${where.dir}` });
  try {
    return (baseCache = bindBase(path));
  } catch (e) {
    return (baseCache = { reason: `${path} did not load: ${firstLine(e)}` });
  }
}

/**
 * libggml-base and the best CPU library for this machine, with ggml's log silenced (main thread only: a
 * callback registered in a worker thread would dangle once it exits). Cached per process.
 */
export function loadGgml(): GgmlLoad {
  if (fullCache) return fullCache;
  const base = loadGgmlBase();
  if ("reason" in base) return (fullCache = { ok: false, reason: base.reason });
  if (isMainThread) silenceLog(base);
  const dir = dirname(base.path);
  try {
    const best = bestCpuVariant(dir);
    if ("reason" in best) return (fullCache = { ok: false, reason: best.reason });
    return (fullCache = { ok: true, libs: { dir, release: buildRelease(dir), base, cpu: bindCpu(best.path, best.variant) } });
  } catch (e) {
    return (fullCache = { ok: false, reason: `the ggml CPU library did not load: ${firstLine(e)}` });
  }
}

/** Forgets what was loaded (tests that point OWNTUNE_GGML_DIR elsewhere). Loaded libraries stay mapped. */
export function resetGgmlLoadCache(): void {
  baseCache = undefined;
  fullCache = undefined;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!.trim();
}

function buildRelease(dir: string): string {
  try {
    const meta = JSON.parse(readFileSync(join(dir, "_nlcBuildMetadata.json"), "utf8")) as {
      buildOptions?: { llamaCpp?: { release?: string } };
    };
    return meta.buildOptions?.llamaCpp?.release ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** Each CPU library's own `ggml_backend_score` (0: cannot run here); the highest wins, the rest are unloaded. */
function bestCpuVariant(dir: string): { path: string; variant: string } | { reason: string } {
  const pattern = new RegExp(`^${LIB_PREFIX}ggml-cpu(?:-([A-Za-z0-9_]+))?\\${LIB_EXT}$`);
  const candidates = readdirSync(dir)
    .filter((f) => pattern.test(f))
    .sort();
  if (candidates.length === 0) return { reason: `no ggml CPU library in ${dir}` };
  let best: { path: string; variant: string; score: number } | undefined;
  for (const file of candidates) {
    const path = join(dir, file);
    let lib: ReturnType<typeof koffi.load> | undefined;
    try {
      lib = koffi.load(path);
      const score = Number(lib.func("int ggml_backend_score()")());
      if (score > 0 && (!best || score > best.score)) best = { path, variant: pattern.exec(file)![1] ?? "cpu", score };
    } catch {
      // A library that does not load here is not a candidate.
    }
  }
  return best ?? { reason: `none of the ${candidates.length} ggml CPU libraries in ${dir} supports this CPU` };
}

let logCallback: unknown;

/** Routes ggml's log (repacking, loading, warnings: debug lines included) to nowhere. */
function silenceLog(base: GgmlBase): void {
  if (logCallback) return;
  const proto = koffi.proto("void owntune_ggml_log(int level, const char *text, void *user)");
  logCallback = koffi.register(() => {}, koffi.pointer(proto)); // kept for the life of the process
  base.logSet(logCallback, null);
}

function bindBase(path: string): GgmlBase {
  const lib = koffi.load(path);
  koffi.struct("owntune_ggml_init_params", { mem_size: "size_t", mem_buffer: "void *", no_alloc: "bool" });
  koffi.struct("owntune_ggml_threadpool_params", {
    cpumask: koffi.array("bool", 512), // GGML_MAX_N_THREADS
    n_threads: "int",
    prio: "int",
    poll: "uint32_t",
    strict_cpu: "bool",
    paused: "bool",
  });
  const f = (decl: string) => lib.func(decl) as unknown as Fn;
  const b = {
    quantizeChunk: f(
      "size_t ggml_quantize_chunk(int type, const float *src, void *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)",
    ),
    rowSize: f("size_t ggml_row_size(int type, int64_t ne)"),
    init: f("void *ggml_init(owntune_ggml_init_params params)"),
    free: f("void ggml_free(void *ctx)"),
    reset: f("void ggml_reset(void *ctx)"),
    tensorOverhead: f("size_t ggml_tensor_overhead()"),
    graphOverhead: f("size_t ggml_graph_overhead()"),
    newTensor2d: f("void *ggml_new_tensor_2d(void *ctx, int type, int64_t ne0, int64_t ne1)"),
    getData: f("void *ggml_get_data(void *tensor)"),
    nbytes: f("size_t ggml_nbytes(void *tensor)"),
    setInput: f("void ggml_set_input(void *tensor)"),
    setOutput: f("void ggml_set_output(void *tensor)"),
    mulMat: f("void *ggml_mul_mat(void *ctx, void *a, void *b)"),
    transpose: f("void *ggml_transpose(void *ctx, void *a)"),
    cpy: f("void *ggml_cpy(void *ctx, void *a, void *b)"),
    cont: f("void *ggml_cont(void *ctx, void *a)"),
    view2d: f("void *ggml_view_2d(void *ctx, void *a, int64_t ne0, int64_t ne1, size_t nb1, size_t offset)"),
    scale: f("void *ggml_scale(void *ctx, void *a, float s)"),
    tanh: f("void *ggml_tanh(void *ctx, void *a)"),
    softMax: f("void *ggml_soft_max(void *ctx, void *a)"),
    mul: f("void *ggml_mul(void *ctx, void *a, void *b)"),
    sub: f("void *ggml_sub(void *ctx, void *a, void *b)"),
    sqr: f("void *ggml_sqr(void *ctx, void *a)"),
    argmax: f("void *ggml_argmax(void *ctx, void *a)"),
    getRows: f("void *ggml_get_rows(void *ctx, void *a, void *b)"),
    cast: f("void *ggml_cast(void *ctx, void *a, int type)"),
    newGraph: f("void *ggml_new_graph(void *ctx)"),
    buildForwardExpand: f("void ggml_build_forward_expand(void *graph, void *tensor)"),
    tensorSet: f("void ggml_backend_tensor_set(void *tensor, const void *data, size_t offset, size_t size)"),
    allocCtxTensorsFromBuft: f("void *ggml_backend_alloc_ctx_tensors_from_buft(void *ctx, void *buft)"),
    bufferFree: f("void ggml_backend_buffer_free(void *buffer)"),
    cpuBufferType: f("void *ggml_backend_cpu_buffer_type()"),
    buftName: f("const char *ggml_backend_buft_name(void *buft)"),
    gallocrNew: f("void *ggml_gallocr_new(void *buft)"),
    gallocrAllocGraph: f("bool ggml_gallocr_alloc_graph(void *galloc, void *graph)"),
    gallocrFree: f("void ggml_gallocr_free(void *galloc)"),
    graphCompute: f("int ggml_backend_graph_compute(void *backend, void *graph)"),
    backendFree: f("void ggml_backend_free(void *backend)"),
    regDevGet: f("void *ggml_backend_reg_dev_get(void *reg, size_t index)"),
    regGetProcAddress: f("void *ggml_backend_reg_get_proc_address(void *reg, const char *name)"),
    threadpoolParamsDefault: f("owntune_ggml_threadpool_params ggml_threadpool_params_default(int n_threads)"),
    logSet: f("void ggml_log_set(void *callback, void *user)"),
  };
  // size_t results come back as numbers (exact below 2^53, far above any size here).
  return { path, ...b } as unknown as GgmlBase;
}

function bindCpu(path: string, variant: string): GgmlCpu {
  const lib = koffi.load(path);
  const f = (decl: string) => lib.func(decl) as unknown as Fn;
  const hasAvx2 = f("int ggml_cpu_has_avx2()");
  return {
    path,
    variant,
    backendInit: f("void *ggml_backend_cpu_init()"),
    setThreadpool: f("void ggml_backend_cpu_set_threadpool(void *backend, void *threadpool)"),
    setNThreads: f("void ggml_backend_cpu_set_n_threads(void *backend, int n)"),
    threadpoolNew: f("void *ggml_threadpool_new(const owntune_ggml_threadpool_params *params)"),
    threadpoolFree: f("void ggml_threadpool_free(void *threadpool)"),
    reg: f("void *ggml_backend_cpu_reg()"),
    hasAvx2: () => Number(hasAvx2()) !== 0,
  } as unknown as GgmlCpu;
}
