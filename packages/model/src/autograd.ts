// Custom-gradient helpers over TensorFlow.js: a typed tf.customGrad, computations kept off the gradient
// tape, and activation recomputation (gradient checkpointing, as torch.utils.checkpoint): a block runs
// off the tape in the forward pass, keeping only its inputs, and runs again under a tape in the backward
// pass to get its gradients.
import * as tf from "@tensorflow/tfjs";

/** tf.customGrad with typed inputs: `f(inputs, save)` returns the value and the gradient of each input. */
export function customGrad<I extends tf.Tensor[], O extends tf.Tensor>(
  f: (inputs: I, save: tf.GradSaveFunc) => { value: O; gradFunc: (dy: O, saved: tf.Tensor[]) => tf.Tensor[] },
): (...inputs: I) => O {
  const g = tf.customGrad(((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args.pop() as tf.GradSaveFunc;
    return f(args as I, save);
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return g as unknown as (...inputs: I) => O;
}

/**
 * Runs `fn` off the gradient tape: for values that depend on no trainable tensor (embedding lookups,
 * per-layer inputs). Under a tape tfjs saves the inputs each op's gradient needs, and on wasm saving
 * copies them (its Identity kernel copies), so a taped gather from the embedding would duplicate the
 * whole table. The result has a zero gradient.
 */
export function untaped<T extends tf.Tensor>(fn: () => T): T {
  const anchor = tf.scalar(0);
  const out = customGrad(([a]: [tf.Tensor]) => ({ value: fn(), gradFunc: () => [tf.zerosLike(a)] }))(anchor);
  anchor.dispose();
  return out;
}

/**
 * `f(inputs, constants)` → outputs, recomputed in the backward pass. Gradients flow to `inputs` (pass
 * LoRA variables here, and anything else f reads that needs a gradient); `constants` (masks, tables) are
 * kept for the recomputation and get none. `f` must read only its arguments (the backward pass calls it
 * on saved copies) and compute the same thing each time. Any number of outputs, of any shapes.
 */
export function recomputed(
  f: (inputs: tf.Tensor[], constants: tf.Tensor[]) => tf.Tensor[],
  inputs: tf.Tensor[],
  constants: tf.Tensor[],
): tf.Tensor[] {
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
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy: tf.Tensor,
    allowNoGradients: boolean,
  ): { value: tf.Tensor; grads: Array<tf.Tensor | undefined> };
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
