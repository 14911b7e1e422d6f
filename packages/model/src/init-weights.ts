// Deterministic random weights for a config, for `owntune init-model` and tests. Each tensor has its
// own stream seeded from (seed, name), so a tensor's values do not depend on which others exist.
// Scales are chosen so a random model behaves like a trained one in the ways tests care about:
// logits spread over a few units, attention neither uniform nor one-hot, every weight matters
// (norm weights and layer scalars are not 1).
import { fillNormal, seededRandom } from "@owntune/core";
import type { Gemma4Config } from "./config.js";
import { expectedTensors, type TensorSpec } from "./tensors.js";

/** How one tensor's values are drawn: N(mean, std²), or (layer scalars) uniform on [0.6, 1.2). */
type Distribution = { kind: "normal"; mean: number; std: number } | { kind: "scalar" };

function distribution(c: Gemma4Config, spec: TensorSpec): Distribution {
  const H = c.hidden_size;
  switch (spec.role) {
    case "embedding":
      // Token embedding: std 3/√H so tied-head logits (final-norm output · E) have std ≈ 3.
      // PLE table: scaled by √P in the forward pass, so std 1/√P keeps it O(1).
      return {
        kind: "normal",
        mean: 0,
        std: spec.name.startsWith("embed_tokens_per_layer") ? 1 / Math.sqrt(spec.shape[1]! / c.num_hidden_layers) : 3 / Math.sqrt(H),
      };
    case "linear":
      return { kind: "normal", mean: 0, std: 1 / Math.sqrt(spec.shape[1]!) };
    case "norm":
      if (/\.(q_norm|k_norm)\.weight$/.test(spec.name)) {
        // Attention scale is 1.0 (no 1/√d): q·k of unit-RMS heads has std √d, so scale each side by
        // d^(-1/4) to keep scores O(1); the spread keeps heads distinct.
        return { kind: "normal", mean: spec.shape[0]! ** -0.25, std: 0.1 * spec.shape[0]! ** -0.25 };
      }
      return { kind: "normal", mean: 1, std: 0.1 };
    case "scalar":
      return { kind: "scalar" };
  }
}

/** Values for one tensor of the config, drawn from its own seeded stream. */
export function randomTensor(c: Gemma4Config, spec: TensorSpec, seed: number): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const rng = seededRandom(seed, spec.name);
  const d = distribution(c, spec);
  if (d.kind === "scalar") {
    out[0] = 0.6 + 0.6 * rng();
    return out;
  }
  return fillNormal(out, rng, d.mean, d.std);
}

/**
 * The values of `randomTensor(c, spec, seed)` in consecutive chunks of at most `chunkElements`
 * (rounded down to even, so Box–Muller pairs never straddle a chunk): for tensors too large to hold
 * at once (E2B's per-layer embedding table has 2.3 G values). Each chunk is a fresh array.
 */
export function* randomTensorChunks(c: Gemma4Config, spec: TensorSpec, seed: number, chunkElements = 1 << 22): Generator<Float32Array> {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const d = distribution(c, spec);
  if (d.kind === "scalar" || size <= chunkElements) {
    yield randomTensor(c, spec, seed);
    return;
  }
  const step = Math.max(2, chunkElements - (chunkElements % 2));
  const rng = seededRandom(seed, spec.name);
  for (let done = 0; done < size; done += step) yield fillNormal(new Float32Array(Math.min(step, size - done)), rng, d.mean, d.std);
}

/** All tensors of a model with random weights, keyed by HF name without prefix, in checkpoint order. */
export function randomWeights(c: Gemma4Config, seed: number): Map<string, Float32Array> {
  const weights = new Map<string, Float32Array>();
  for (const spec of expectedTensors(c)) weights.set(spec.name, randomTensor(c, spec, seed));
  return weights;
}
