// Shared by the compute benchmarks: the ~100M-parameter config, useful-FLOP counting, CPU-time timing
// on a shared machine, and the raw dense matMul rate every result is set beside.
import * as tf from "@tensorflow/tfjs";
import { configToJson, gemma4Tiny, layerSpecs, parseGemma4Config, type Gemma4Config } from "@owntune/model";

/** ~100M parameters besides the 262,144-token embedding: 10 layers of H 768, F 3072, 4 heads (1 KV) of 256 / 512. */
export function bench100m(): Gemma4Config {
  const S = "sliding_attention";
  const F = "full_attention";
  return parseGemma4Config({
    ...configToJson(gemma4Tiny()),
    hidden_size: 768,
    intermediate_size: 3072,
    num_hidden_layers: 10,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    num_global_key_value_heads: null,
    head_dim: 256,
    global_head_dim: 512,
    attention_k_eq_v: false,
    layer_types: [S, S, S, S, F, S, S, S, S, F],
    sliding_window: 512,
    num_kv_shared_layers: 0,
    hidden_size_per_layer_input: 0,
    use_double_wide_mlp: false,
  });
}

/** Useful forward FLOPs for T tokens of one row: linears, causal (window-limited) attention, PLE, and the head on `headTokens` rows. */
export function forwardFlops(c: Gemma4Config, T: number, headTokens: number): number {
  const H = c.hidden_size;
  const P = c.hidden_size_per_layer_input;
  let flops = 2 * headTokens * H * c.vocab_size;
  if (P > 0) flops += 2 * T * H * c.num_hidden_layers * P;
  for (const s of layerSpecs(c)) {
    const q = s.numHeads * s.headDim;
    const kv = s.kvShared ? 0 : 2 * s.numKvHeads * s.headDim * (s.hasVProj ? 1 : 0.5);
    flops += 2 * T * (H * q + H * kv + q * H + 3 * H * s.mlpWidth + (P > 0 ? 2 * H * P : 0));
    let pairs = 0; // (query, key) pairs attended
    for (let t = 0; t < T; t++) pairs += Math.min(t + 1, s.sliding ? c.sliding_window : Infinity);
    flops += 2 * 2 * pairs * q; // q·k and p·v
  }
  return flops;
}

/** wasm threads for this run: OWNTUNE_WASM_THREADS, default 1 (see `main` below). */
export const THREADS = Number(process.env.OWNTUNE_WASM_THREADS ?? 1);

/**
 * Seconds of `fn` as rates use them, and wall seconds. Single-threaded, rates use CPU time: the machine
 * this runs on is shared, and CPU time is the compute this process got. With more threads CPU time
 * sums the threads, so rates use wall time (meaningful on an otherwise idle machine only).
 */
export function time<T>(fn: () => T): { value: T; seconds: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const c = process.cpuUsage(c0);
  const wall = (performance.now() - t0) / 1000;
  return { value, seconds: THREADS > 1 ? wall : (c.user + c.system) / 1e6, wall };
}

export function best<T>(runs: number, fn: () => T): { value: T; seconds: number; wall: number } {
  let out = time(fn);
  for (let i = 1; i < runs; i++) {
    const r = time(fn);
    if (r.seconds < out.seconds) out = r;
  }
  return out;
}

/** Raw dense matMul GFLOP/s (no transposes) for [M, K]·[K, N], checked against a float64 dot product. */
export function rawMatMul(M: number, K: number, N: number): number {
  const a = tf.randomNormal([M, K], 0, 1, "float32", 1) as tf.Tensor2D;
  const b = tf.randomNormal([K, N], 0, 1, "float32", 2) as tf.Tensor2D;
  const av = a.dataSync();
  const bv = b.dataSync();
  const c = tf.matMul(a, b);
  const got = c.dataSync()[3 * N + 5]!;
  let want = 0;
  for (let k = 0; k < K; k++) want += av[3 * K + k]! * bv[k * N + 5]!;
  if (Math.abs(got - want) > 1e-3 * Math.sqrt(K)) throw new Error(`matMul check failed: ${got} vs ${want}`);
  c.dispose();
  // (tf.tidy must not return the typed array: it would walk its elements looking for tensors)
  const { seconds } = best(3, () => tf.tidy(() => void tf.matMul(a, b).dataSync()));
  tf.dispose([a, b]);
  return (2 * M * K * N) / seconds / 1e9;
}

/** The raw reference rate, measured right before and after `fn` (the machine may be shared): the mean of the two. */
export function besideRaw<T>(fn: () => { value: T; seconds: number; wall: number }): {
  value: T;
  seconds: number;
  wall: number;
  raw: number;
} {
  const before = rawMatMul(512, 1024, 1024);
  const r = fn();
  const after = rawMatMul(512, 1024, 1024);
  return { ...r, raw: (before + after) / 2 };
}
