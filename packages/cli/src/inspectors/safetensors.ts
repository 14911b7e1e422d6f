// `owntune inspect FILE.safetensors`: metadata, tensor count, dtypes, sizes, and the tensors themselves.
import { formatBytes, numElements, withSafetensors } from "@owntune/core";
import { formatCount, type Inspector } from "./types.js";

/** Tensors listed in human output before the rest are summarised (--json lists all). */
const MAX_LISTED_TENSORS = 40;

export const safetensorsInspector: Inspector = {
  kind: "safetensors file",
  matches: (path, stat) => stat.isFile() && path.endsWith(".safetensors"),
  inspect: (path) =>
    withSafetensors(path, async (f) => {
      const tensors = [...f.entries.values()].map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, bytes: e.end - e.begin }));
      const dtypes: Record<string, number> = {};
      for (const t of tensors) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
      const elements = tensors.reduce((a, t) => a + numElements(t.shape), 0);
      const lines = [
        `${path}: safetensors, ${formatBytes(f.size)}, ${tensors.length} tensors, ${formatCount(elements)} values`,
        `  dtypes: ${
          Object.entries(dtypes)
            .map(([d, n]) => `${d} ×${n}`)
            .join(", ") || "none"
        }`,
        ...(Object.keys(f.metadata).length > 0 ? [`  metadata: ${JSON.stringify(f.metadata)}`] : []),
        ...tensors.slice(0, MAX_LISTED_TENSORS).map((t) => `  ${t.name}  ${t.dtype} [${t.shape.join(", ")}]`),
        ...(tensors.length > MAX_LISTED_TENSORS ? [`  … ${tensors.length - MAX_LISTED_TENSORS} more (use --json for all)`] : []),
      ];
      return { kind: "safetensors file", data: { path, bytes: f.size, metadata: f.metadata, dtypes, values: elements, tensors }, lines };
    }),
};
