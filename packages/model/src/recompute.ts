// Activation recomputation (gradient checkpointing, as torch.utils.checkpoint): a block runs off the
// gradient tape in the forward pass, keeping only its inputs, and is run again under a tape in the
// backward pass to get its gradients. Per decoder layer, a training step then holds every layer's input
// plus one layer's activations at a time, instead of every layer's activations.
import { totalmem } from "node:os";
import * as tf from "@tensorflow/tfjs";
import type { Gemma4Config, LayerSpec } from "./config.js";
import { customGrad } from "./linear.js";

/**
 * `f(inputs, constants)` → outputs, recomputed in the backward pass. Gradients flow to `inputs` (pass
 * LoRA variables here, and anything else f reads that needs a gradient); `constants` (masks, tables) are
 * kept for the recomputation and get none. `f` must read only its arguments (the backward pass calls it
 * on saved copies) and compute the same thing each time. Any number of outputs, of any shapes.
 */
export function recomputed(f: (inputs: tf.Tensor[], constants: tf.Tensor[]) => tf.Tensor[], inputs: tf.Tensor[], constants: tf.Tensor[]): tf.Tensor[] {
  const shapes: number[][] = [];
  // tf.customGrad has one output: the outputs travel flattened and concatenated, and are sliced apart after.
  const packed = (outs: tf.Tensor[]) => {
    shapes.length = 0;
    for (const o of outs) shapes.push(o.shape);
    return outs.length === 1 ? tf.reshape(outs[0]!, [-1]) : tf.concat(outs.map((o) => tf.reshape(o, [-1])));
  };
  const run = customGrad((args: tf.Tensor[], save) => {
    save([...args, ...constants]);
    return {
      value: packed(f(args, constants)),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const xs = saved.slice(0, args.length);
        const cs = saved.slice(args.length);
        return withOwnTape(() => {
          const engine = tf.engine() as unknown as Engine;
          const { value, grads } = engine.gradients(() => packed(f(xs, cs)), xs, dy, true);
          value.dispose();
          return xs.map((x, i) => grads[i] ?? tf.zerosLike(x)); // an input f did not use gets a zero gradient
        });
      },
    };
  });
  const flat = run(...inputs);
  const out: tf.Tensor[] = [];
  let offset = 0;
  for (const shape of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    out.push(tf.reshape(tf.slice(flat, [offset], [n]), shape));
    offset += n;
  }
  return out;
}

/** The part of tfjs's engine used here (tf.grads refuses inputs without a gradient; this call allows them). */
interface Engine {
  gradients(f: () => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor, allowNoGradients: boolean): { value: tf.Tensor; grads: Array<tf.Tensor | undefined> };
}

/**
 * Runs a gradient computation inside another one's backward pass. tfjs (4.22 engine.gradients) keeps
 * one active tape: a nested `tf.grads` replaces it and, when done, frees its own tape and sets it to
 * null, where the outer call still has to free the outer tape. So the outer tape is put back after.
 */
function withOwnTape<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const outer = state.activeTape;
  try {
    return fn();
  } finally {
    state.activeTape = outer;
  }
}

/**
 * Share of the machine's memory that a training step's activations may take before `recompute: "auto"`
 * turns recomputation on (gemma4-tiny and ~100M models at T = 512 stay well under it; E2B does not).
 */
export const RECOMPUTE_MEMORY_SHARE = 1 / 16;

/**
 * Whether `auto` recomputes: the float32 activations a tape keeps per token and layer, estimated from
 * what the ops save (norm inputs, projections, the MLP's gate/up/product, attention probabilities and
 * its products: 16·H + 4·F + Nq·(2·S + 4·d) with S the keys a query sees), over B·T tokens and every layer.
 */
export function recomputeByDefault(model: { config: Gemma4Config; layers: readonly LayerSpec[] }, B: number, T: number, totalMemory = totalmem()): boolean {
  const H = model.config.hidden_size;
  let perToken = 0;
  for (const l of model.layers) {
    const S = l.sliding ? Math.min(T, model.config.sliding_window) : T;
    perToken += 16 * H + 4 * l.mlpWidth + l.numHeads * (2 * S + 4 * l.headDim);
  }
  return 4 * B * T * perToken > RECOMPUTE_MEMORY_SHARE * totalMemory;
}
