// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) over the adapter's parameters, held on the
// host as float32 arrays, with the global gradient norm and its clipping. The arithmetic per element is
// float64 and follows torch.optim.AdamW (foreach=False): p ← p·(1 − lr·λ); m ← β1·m + (1−β1)·g;
// v ← β2·v + (1−β2)·g²; p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε). The moments are kept in
// float32, as torch keeps them for float32 parameters, so a checkpoint restores them bit for bit.

export interface AdamWConfig {
  betas: readonly [number, number];
  eps: number;
  weight_decay: number;
}

/** AdamW state for a list of parameter arrays (one per LoRA matrix, in a fixed order). */
export class AdamW {
  /** Optimizer steps taken (t in the bias corrections). */
  step = 0;
  readonly m: Float32Array[];
  readonly v: Float32Array[];

  constructor(
    readonly config: AdamWConfig,
    sizes: readonly number[],
  ) {
    this.m = sizes.map((n) => new Float32Array(n));
    this.v = sizes.map((n) => new Float32Array(n));
  }

  /** One update of `params` in place with gradients `grads` (same shapes) at learning rate `lr`. */
  update(params: readonly Float32Array[], grads: readonly Float32Array[], lr: number): void {
    const [b1, b2] = this.config.betas;
    const { eps, weight_decay: wd } = this.config;
    this.step += 1;
    const c1 = 1 - b1 ** this.step;
    const c2 = Math.sqrt(1 - b2 ** this.step);
    const stepSize = lr / c1;
    const decay = 1 - lr * wd;
    params.forEach((p, k) => {
      const g = grads[k]!;
      const m = this.m[k]!;
      const v = this.v[k]!;
      if (g.length !== p.length) throw new RangeError(`AdamW: gradient ${k} has ${g.length} values, parameter ${p.length}`);
      for (let i = 0; i < p.length; i++) {
        const gi = g[i]!;
        m[i] = b1 * m[i]! + (1 - b1) * gi;
        v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
        p[i] = p[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / c2 + eps); // the stored (float32) moments
      }
    });
  }
}

/** √(Σ g²) over every array, summed in float64 in a fixed order. */
export function globalNorm(grads: readonly Float32Array[]): number {
  let s = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) s += g[i]! * g[i]!;
  return Math.sqrt(s);
}

/**
 * Scales `grads` in place so their global norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_:
 * coefficient maxNorm / (norm + 1e-6), applied only when below 1). Returns the coefficient used.
 */
export function clipGradients(grads: readonly Float32Array[], norm: number, maxNorm: number | null): number {
  if (maxNorm === null) return 1;
  const coef = maxNorm / (norm + 1e-6);
  if (coef >= 1) return 1;
  for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  return coef;
}
