// The trainable adapter: one LoRA pair per planned module, held on the host as float32 arrays (the
// optimizer's source of truth, saved in checkpoints) and mirrored in tf.Variables that the forward pass
// reads. Initialised as PEFT does: A ~ Kaiming-uniform with a = √5 (U(−1/√in, 1/√in)), B = 0, so the
// adapter starts as the identity. Reference: peft tuners/lora/layer.py reset_lora_parameters.
import * as tf from "@tensorflow/tfjs";
import type { LoraLayers, LoraTensors } from "@owntune/model";
import { seededRandom } from "@owntune/core";
import type { AdapterWeights, LoraPair } from "./adapter.js";
import type { PlannedModule } from "./targets.js";

/** PEFT's scaling: alpha/r, or alpha/√r with rsLoRA. */
export function loraScaling(r: number, alpha: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** Where dropout masks come from: a counter-based stream per (seed, step, micro-batch, module). */
export interface DropoutContext {
  seed: number;
  p: number;
  step: number;
  micro: number;
}

let instances = 0;

export class LoraState {
  readonly modules: readonly PlannedModule[];
  readonly rank: number;
  readonly scale: number;
  /** Parameters in a fixed order: A then B of each module, in plan order. */
  readonly params: Float32Array[];
  private readonly vars: Array<tf.Variable<tf.Rank.R2>>;

  constructor(
    modules: readonly PlannedModule[],
    rank: number,
    scale: number,
    init: { seed: number } | { pairs: ReadonlyMap<string, LoraPair> },
  ) {
    this.modules = modules;
    this.rank = rank;
    this.scale = scale;
    this.params = modules.flatMap((m) => {
      if ("pairs" in init) {
        const p = init.pairs.get(m.name);
        if (!p || p.rank !== rank || p.inFeatures !== m.inFeatures || p.outFeatures !== m.outFeatures)
          throw new RangeError(`${m.name}: no matching LoRA pair to restore`);
        return [Float32Array.from(p.a), Float32Array.from(p.b)];
      }
      const bound = 1 / Math.sqrt(m.inFeatures); // kaiming_uniform_(a=√5): gain √(2/6), bound gain·√3/√fan_in
      const rng = seededRandom(init.seed, `lora_A:${m.name}`);
      const a = new Float32Array(rank * m.inFeatures);
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng() - 1) * bound;
      return [a, new Float32Array(m.outFeatures * rank)];
    });
    const tag = `owntune-lora-${++instances}`;
    this.vars = modules.flatMap((m, i) => [
      tf.variable(tf.tensor2d(this.params[2 * i]!, [rank, m.inFeatures]), true, `${tag}/${m.name}/lora_A`),
      tf.variable(tf.tensor2d(this.params[2 * i + 1]!, [m.outFeatures, rank]), true, `${tag}/${m.name}/lora_B`),
    ]);
  }

  /** Trainable parameters (values). */
  get size(): number {
    return this.params.reduce((n, p) => n + p.length, 0);
  }

  /** The variables, in `params` order (what tf.variableGrads differentiates). */
  get variables(): ReadonlyArray<tf.Variable<tf.Rank.R2>> {
    return this.vars;
  }

  /** The forward pass's LoRA layers; with `dropout`, each module's input gets its own mask. */
  layers(dropout?: DropoutContext): LoraLayers {
    const out = new Map<string, LoraTensors>();
    this.modules.forEach((m, i) => {
      const pair: LoraTensors = { a: this.vars[2 * i]!, b: this.vars[2 * i + 1]!, scale: this.scale };
      if (dropout && dropout.p > 0)
        pair.dropoutMask = (rows) => tf.tensor2d(dropoutMask(dropout, m.name, rows, m.inFeatures), [rows, m.inFeatures]);
      out.set(m.name, pair);
    });
    return out;
  }

  /** Copies the host parameters into the variables (after an optimizer update or a restore). */
  sync(): void {
    tf.tidy(() => this.vars.forEach((v, i) => v.assign(tf.tensor2d(this.params[i]!, v.shape as [number, number]))));
  }

  /** A copy of the adapter as PEFT-layout weights. */
  snapshot(): AdapterWeights {
    const pairs = new Map<string, LoraPair>();
    this.modules.forEach((m, i) => {
      pairs.set(m.name, {
        rank: this.rank,
        inFeatures: m.inFeatures,
        outFeatures: m.outFeatures,
        a: this.params[2 * i]!.slice(),
        b: this.params[2 * i + 1]!.slice(),
      });
    });
    return { scale: this.scale, pairs };
  }

  dispose(): void {
    for (const v of this.vars) v.dispose();
  }
}

/** Dropout mask [rows, cols]: 0 with probability p, else 1/(1−p), the same for the same context and module. */
export function dropoutMask(ctx: DropoutContext, module: string, rows: number, cols: number): Float32Array {
  const rng = seededRandom(ctx.seed, `dropout:${ctx.step}:${ctx.micro}:${module}`);
  const keep = 1 / (1 - ctx.p);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = rng() < ctx.p ? 0 : keep;
  return out;
}
