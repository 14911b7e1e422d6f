// `owntune inspect DATASET_DIR`: a curated dataset (manifest.json + Arrow shards): splits, tokens,
// packing efficiency, drops per filter; every shard is opened and checked against the manifest.
import { formatDatasetInfo, inspectDataset, isDatasetDir } from "@owntune/curate";
import type { Inspector } from "./types.js";

export const datasetDirInspector: Inspector = {
  kind: "dataset directory",
  matches: (path, stat) => stat.isDirectory() && isDatasetDir(path),
  async inspect(dir) {
    const info = await inspectDataset(dir);
    const lines = formatDatasetInfo(info).split("\n");
    for (const split of ["train", "val"] as const) {
      if (info.verified[split].tokens !== info.splits[split].tokens) {
        lines.push(
          `  WARNING: ${split} shards hold ${info.verified[split].tokens} tokens, manifest.json says ${info.splits[split].tokens}`,
        );
      }
    }
    const { kind: _kind, ...data } = info;
    return { kind: "dataset directory", data, lines };
  },
};
