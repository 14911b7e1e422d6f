// The Gemma 4 building blocks (spec/gemma4.md §2, §3.4, §3.7) as single custom-gradient ops. Under a
// gradient tape tfjs keeps every input each primitive's gradient needs, and on wasm keeping copies it;
// as one op each block keeps only what its own gradient needs (RMSNorm: x and 1/rms; GELU: x; RoPE and
// the masked softmax: nothing beyond the output), which halves training activation memory, and its
// backward is a few fused elementwise steps instead of a chain of primitive gradients.
import * as tf from "@tensorflow/tfjs";
import { customGrad } from "./autograd.js";

/**
 * RMSNorm over the last axis: y = x·(mean(x²) + eps)^(−1/2)·w (w = null: the scale-free V-norm).
 * `w` is a frozen weight. Gradient: dx = r·(g − x̂·mean(g·x̂)), g = dy·w, x̂ = x·r.
 */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor | null, eps: number): tf.Tensor {
  return customGrad(([xi]: [tf.Tensor], save) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xi), -1, true), eps));
    const xhat = tf.mul(xi, r);
    save([xi, r]);
    return {
      value: w ? tf.mul(xhat, w) : xhat,
      gradFunc: (dy: tf.Tensor, [xs, rs]: tf.Tensor[]) => {
        const xh = tf.mul(xs!, rs!);
        const g = w ? tf.mul(dy, w) : dy;
        return [tf.mul(rs!, tf.sub(g, tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))))];
      },
    };
  })(x);
}

const GELU_C = Math.sqrt(2 / Math.PI);

/**
 * GELU, tanh form: 0.5x(1 + tanh(u)) = x·σ(2u), u = √(2/π)(x + 0.044715x³) (wasm's sigmoid is ~20×
 * faster than its tanh). Gradient: σ + 2x·σ(1−σ)·√(2/π)(1 + 3·0.044715x²).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  return customGrad(([xi]: [tf.Tensor], save) => {
    save([xi]);
    return {
      value: tf.mul(xi, sigmoid2u(xi)),
      gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => {
        const s = sigmoid2u(xs!);
        const du = tf.mul(tf.add(tf.mul(tf.square(xs!), 3 * 0.044715), 1), 2 * GELU_C); // d(2u)/dx
        return [tf.mul(dy, tf.add(s, tf.mul(tf.mul(xs!, tf.mul(s, tf.sub(1, s))), du)))];
      },
    };
  })(x);
}

function sigmoid2u(x: tf.Tensor): tf.Tensor {
  return tf.sigmoid(tf.mul(tf.mul(x, tf.add(tf.mul(tf.square(x), 0.044715), 1)), 2 * GELU_C));
}

/**
 * RoPE with NeoX pairing on x [B, T, N, d]: x'_j = x_j·cos − x_{j+d/2}·sin, x'_{j+d/2} = x_{j+d/2}·cos +
 * x_j·sin, with cos/sin [B, T, 1, d/2] (constants). Its gradient is the inverse rotation of dy.
 */
export function rope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const rotate = (v: tf.Tensor, c: tf.Tensor, s: tf.Tensor, sign: 1 | -1) => {
    const half = v.shape[3]! / 2;
    const [v1, v2] = tf.split(v, [half, half], 3);
    const ss = sign === 1 ? s : tf.neg(s);
    return tf.concat([tf.sub(tf.mul(v1!, c), tf.mul(v2!, ss)), tf.add(tf.mul(v2!, c), tf.mul(v1!, ss))], 3);
  };
  return customGrad(([xi]: [tf.Tensor], save) => {
    save([cos, sin]); // the caller frees its tables after the forward pass
    return { value: rotate(xi, cos, sin, 1), gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) => [rotate(dy, c!, s!, -1)] };
  })(x);
}

/**
 * softmax(scores + mask) over the last axis, keeping only the probabilities for the gradient
 * (dscores = p ⊙ (dy − Σ dy ⊙ p)). `mask` is a constant, broadcast against `scores`.
 */
export function maskedSoftmax(scores: tf.Tensor, mask: tf.Tensor): tf.Tensor {
  return customGrad(([x]: [tf.Tensor], save) => {
    const p = tf.softmax(tf.add(x, mask));
    save([p]);
    return { value: p, gradFunc: (dy: tf.Tensor, [ps]: tf.Tensor[]) => [tf.mul(ps!, tf.sub(dy, tf.sum(tf.mul(dy, ps!), -1, true)))] };
  })(scores);
}
