// Test-only: llama.cpp's own `llama_model_quantize` (libllama from node-llama-cpp's prebuilt
// binaries, through koffi), the oracle for which tensor gets which type in a mix and for the bytes.
import { dirname, join } from "node:path";
import koffi from "koffi";
import { ggmlBaseLibraryPath } from "../quant/ggml-oracle.js";

let quantizeFn: ((input: string, output: string, ftype: number) => number) | undefined;

/** Quantizes a GGUF file as `llama-quantize input output FTYPE` would (no imatrix, default params). */
export function llamaModelQuantize(input: string, output: string, ftype: number): void {
  if (!quantizeFn) {
    const lib = koffi.load(join(dirname(ggmlBaseLibraryPath()), "libllama.v0.4.0.so"));
    koffi.struct("llama_model_quantize_params", {
      nthread: "int32_t",
      ftype: "int",
      output_tensor_type: "int",
      token_embedding_type: "int",
      allow_requantize: "bool",
      quantize_output_tensor: "bool",
      only_copy: "bool",
      pure: "bool",
      keep_split: "bool",
      dry_run: "bool",
      imatrix: "void *",
      kv_overrides: "void *",
      tt_overrides: "void *",
      prune_layers: "void *",
      max_buf_size: "size_t",
    });
    lib.func("void llama_backend_init()")();
    const defaults = lib.func("llama_model_quantize_params llama_model_quantize_default_params()");
    const quantize = lib.func("uint32_t llama_model_quantize(const char *inp, const char *out, const llama_model_quantize_params *params)");
    quantizeFn = (i, o, ftype) => quantize(i, o, { ...defaults(), ftype, nthread: 2 }) as number;
  }
  const rc = quantizeFn(input, output, ftype);
  if (rc !== 0) throw new Error(`llama_model_quantize(${input}, ftype ${ftype}) returned ${rc}`);
}
