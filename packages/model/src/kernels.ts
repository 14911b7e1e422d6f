// Which kernels multiply the frozen base weights: ggml's native CPU kernels (node-llama-cpp's prebuilt
// libraries through @owntune/ggml) when they load, else TensorFlow.js (wasm). `--kernels` / OWNTUNE_KERNELS
// forces one; the choice and its reason are printed at start and recorded in run.json.
import { BASE_DTYPES, ggmlRuntime, type BaseDtype, type GgmlRuntime } from "@owntune/ggml";
import { UserError } from "@owntune/core";

export const KERNEL_NAMES = ["native", "tfjs"] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

/** Environment variable that forces the kernels (`native` or `tfjs`). */
export const KERNELS_ENV = "OWNTUNE_KERNELS";

/** Which kernels run, why, and (native) what ggml build on how many threads. Plain data, for run.json. */
export interface KernelInfo {
  name: KernelName;
  /** `forced`, `forced (OWNTUNE_KERNELS)`, `first choice`, or why native was not used. */
  reason: string;
  ggml?: { release: string; cpu: string; threads: number };
}

/** Parses a kernels name as a user typed it; `origin` names the flag, variable or field in the error. */
export function parseKernelName(text: string, origin = "--kernels"): KernelName | "auto" {
  const name = text.trim().toLowerCase();
  if (name === "auto" || (KERNEL_NAMES as readonly string[]).includes(name)) return name as KernelName | "auto";
  throw new UserError(`unknown kernels "${text}"`, { field: origin, hint: "use native, tfjs or auto" });
}

/** Parses a base dtype as a user typed it (`f32`, `bf16`, `q8_0`, `q4_0`, `q4_k`, or `auto`). */
export function parseBaseDtype(text: string, origin = "--base-dtype"): BaseDtype | "auto" {
  const name = text.trim().toLowerCase();
  if (name === "auto" || (BASE_DTYPES as readonly string[]).includes(name)) return name as BaseDtype | "auto";
  throw new UserError(`unknown base dtype "${text}"`, { field: origin, hint: `use one of: auto, ${BASE_DTYPES.join(", ")}` });
}

/**
 * The kernels to run: `requested` (a LoadOptions or flag value), else OWNTUNE_KERNELS, else native when
 * the ggml libraries load and tfjs otherwise. A forced `native` that cannot start is a UserError.
 */
export function selectKernels(requested?: KernelName | "auto", origin = "--kernels"): { info: KernelInfo; runtime?: GgmlRuntime } {
  let wanted = requested;
  let from = origin;
  const env = process.env[KERNELS_ENV];
  if ((wanted === undefined || wanted === "auto") && env) {
    wanted = parseKernelName(env, KERNELS_ENV);
    from = KERNELS_ENV;
  }
  const forced = from === KERNELS_ENV ? `forced (${KERNELS_ENV})` : "forced";
  if (wanted === "tfjs") return { info: { name: "tfjs", reason: forced } };
  const rt = ggmlRuntime();
  if ("reason" in rt) {
    if (wanted === "native")
      throw new UserError(`native kernels unavailable: ${rt.reason}`, {
        field: from,
        hint: "use --kernels tfjs (or unset it) to run on TensorFlow.js",
      });
    return { info: { name: "tfjs", reason: `native kernels unavailable: ${rt.reason}` } };
  }
  const ggml = { release: rt.libs.release, cpu: rt.libs.cpu.variant, threads: rt.threads };
  return { info: { name: "native", reason: wanted === "native" ? forced : "first choice", ggml }, runtime: rt };
}

/** `native (ggml v0.4.0, CPU haswell, 2 threads; first choice)`: the line printed at start. */
export function describeKernels(info: KernelInfo): string {
  if (info.name === "tfjs") return `tfjs (${info.reason})`;
  const g = info.ggml!;
  return `native (ggml ${g.release}, CPU ${g.cpu}, ${g.threads} thread${g.threads === 1 ? "" : "s"}; ${info.reason})`;
}
