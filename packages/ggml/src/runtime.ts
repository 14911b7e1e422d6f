// The process's one ggml CPU runtime: a CPU backend on one persistent threadpool that does not poll (its
// threads sleep between graphs instead of spinning a core), a graph allocator whose scratch buffer is
// reused from graph to graph, and `compute`, which builds a small graph, copies the inputs in, runs it
// and hands the outputs back as views. Reference: ggml/include/ggml-cpu.h, ggml-backend.h, ggml-alloc.h.
import { availableParallelism } from "node:os";
import koffi from "koffi";
import { loadGgml, type GgmlBase, type GgmlLibraries, type Ptr } from "./library.js";
import { GgmlType } from "./types.js";

/** Tensors one graph may define (metadata only; data lives in the scratch buffer or in weight buffers). */
const MAX_GRAPH_TENSORS = 256;

/** An input of a graph: a new F32 (or I32) tensor [ne1 rows of ne0] and the values copied into it. */
export interface GraphInput {
  tensor: Ptr;
  values: Float32Array | Int32Array;
}

/** What `compute` builds with: the context to create tensors in and the bound ggml functions. */
export interface GraphBuilder {
  ctx: Ptr;
  g: GgmlBase;
  /** A new float32 input [ne1, ne0] (ne0 contiguous) filled from `values` before the graph runs. */
  input(values: Float32Array, ne0: number, ne1: number): Ptr;
  /** A new int32 input [n] (row ids for get_rows). */
  inputIds(values: Int32Array): Ptr;
}

/** `count` float32 values at `ptr`, as a view (no copy; valid only while the memory is). */
export function floatView(ptr: Ptr, count: number): Float32Array {
  return new Float32Array(koffi.view(ptr, 4 * count));
}

/** `count` int32 values at `ptr`, as a view (no copy; valid only while the memory is). */
export function int32View(ptr: Ptr, count: number): Int32Array {
  return new Int32Array(koffi.view(ptr, 4 * count));
}

export class GgmlRuntime {
  readonly libs: GgmlLibraries;
  readonly threads: number;
  /** The CPU_REPACK buffer type, when this build has one (Q4_0 / Q4_K are repacked into it on x86 AVX2). */
  readonly repackBufferType: Ptr | undefined;
  private backend: Ptr;
  private threadpool: Ptr;
  private galloc: Ptr;
  private meta: Ptr;
  private disposed = false;

  constructor(libs: GgmlLibraries, threads: number) {
    this.libs = libs;
    this.threads = threads;
    const { base, cpu } = libs;
    const params = base.threadpoolParamsDefault(threads);
    params.poll = 0; // sleep between graphs: the default polling keeps a core busy for ~165 ms after each
    this.threadpool = cpu.threadpoolNew(params);
    if (!this.threadpool) throw new Error("ggml_threadpool_new failed");
    this.backend = cpu.backendInit();
    cpu.setNThreads(this.backend, threads);
    cpu.setThreadpool(this.backend, this.threadpool);
    this.galloc = base.gallocrNew(base.cpuBufferType());
    this.meta = base.init({ mem_size: MAX_GRAPH_TENSORS * base.tensorOverhead() + base.graphOverhead(), mem_buffer: null, no_alloc: true });
    this.repackBufferType = findRepackBufferType(libs);
  }

  /**
   * Builds a graph with `build` (which returns the tensors to compute), allocates its intermediates in
   * the scratch buffer, copies the inputs in, runs it on the threadpool, and returns `read(outputs)`.
   * Views of outputs are valid only inside `read`.
   */
  compute<T>(build: (b: GraphBuilder) => Ptr[], read: (outputs: Ptr[]) => T): T {
    if (this.disposed) throw new Error("the ggml runtime is disposed");
    const g = this.libs.base;
    g.reset(this.meta);
    const inputs: GraphInput[] = [];
    const builder: GraphBuilder = {
      ctx: this.meta,
      g,
      input: (values, ne0, ne1) => {
        if (values.length !== ne0 * ne1) throw new RangeError(`graph input of ${values.length} values, expected [${ne1}, ${ne0}]`);
        const t = g.newTensor2d(this.meta, GgmlType.F32, ne0, ne1);
        g.setInput(t);
        inputs.push({ tensor: t, values });
        return t;
      },
      inputIds: (values) => {
        const t = g.newTensor2d(this.meta, I32, values.length, 1);
        g.setInput(t);
        inputs.push({ tensor: t, values });
        return t;
      },
    };
    const outputs = build(builder);
    const graph = g.newGraph(this.meta);
    for (const o of outputs) {
      g.setOutput(o);
      g.buildForwardExpand(graph, o);
    }
    if (!g.gallocrAllocGraph(this.galloc, graph)) throw new Error("ggml could not allocate the graph's scratch memory");
    for (const { tensor, values } of inputs) {
      const dst = values instanceof Int32Array ? int32View(g.getData(tensor), values.length) : floatView(g.getData(tensor), values.length);
      dst.set(values);
    }
    const status = g.graphCompute(this.backend, graph);
    if (status !== 0) throw new Error(`ggml_backend_graph_compute returned status ${status}`);
    return read(outputs);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const { base, cpu } = this.libs;
    base.free(this.meta);
    base.gallocrFree(this.galloc);
    base.backendFree(this.backend);
    cpu.threadpoolFree(this.threadpool);
  }
}

const I32 = 26;

/** The CPU backend's extra buffer type named CPU_REPACK, through the registry's proc-address API. */
function findRepackBufferType({ base, cpu }: GgmlLibraries): Ptr | undefined {
  const reg = cpu.reg();
  const getExtra = base.regGetProcAddress(reg, "ggml_backend_dev_get_extra_bufts");
  if (!getExtra) return undefined;
  const list = koffi.call(getExtra, koffi.proto("void *owntune_get_extra_bufts(void *dev)"), base.regDevGet(reg, 0)) as Ptr;
  if (!list) return undefined;
  for (let i = 0; i < 16; i++) {
    const buft = koffi.decode(list, i * 8, "void *") as Ptr;
    if (!buft) break;
    if (base.buftName(buft) === "CPU_REPACK") return buft;
  }
  return undefined;
}

let runtime: GgmlRuntime | undefined;

/** Threads the runtime uses: OWNTUNE_GGML_THREADS, else one per core. */
export function defaultGgmlThreads(): number {
  const v = process.env.OWNTUNE_GGML_THREADS;
  const n = v ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 ? n : Math.max(1, availableParallelism());
}

/** The process's runtime, started on first use; `{ reason }` when the libraries are missing or refuse to load. */
export function ggmlRuntime(): GgmlRuntime | { reason: string } {
  if (runtime) return runtime;
  const load = loadGgml();
  if (!load.ok) return { reason: load.reason };
  try {
    runtime = new GgmlRuntime(load.libs, defaultGgmlThreads());
    return runtime;
  } catch (e) {
    return { reason: `the ggml runtime did not start: ${e instanceof Error ? e.message : String(e)}` };
  }
}
