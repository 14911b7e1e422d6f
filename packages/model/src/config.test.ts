// config.json as users get it wrong: a problem across fields at its field's line, one cause reported
// once, sizes past any real model refused before anything is sized by them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "@owntune/core";
import { readGemma4Config } from "./config.js";
import { microConfig } from "./test-fixtures.js";

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return (e as UserError).format();
  }
  throw new Error("was accepted");
}

describe("config.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "owntune-config-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const base = { ...microConfig(), rope_parameters: undefined };
  const write = (name: string, value: unknown) => {
    const path = join(dir, name);
    writeFileSync(path, JSON.stringify(value, null, 2));
    return path;
  };
  const lineOf = (path: string, key: string) =>
    readFileSync(path, "utf8")
      .split("\n")
      .findIndex((l) => l.startsWith(`  "${key}":`)) + 1;

  it("locates a semantic problem (across fields) at its field's line", async () => {
    const path = write("heads.json", { ...base, num_key_value_heads: 3 });
    const message = await messageOf(readGemma4Config(path));
    expect(message).toBe(
      `${path}:${lineOf(path, "num_key_value_heads")}: num_key_value_heads: num_attention_heads (2) must be a multiple of it, got 3`,
    );
  });

  it("gives one line for a short layer_types, without a knock-on problem about KV sharing", async () => {
    const path = write("short.json", { ...base, layer_types: ["sliding_attention", "full_attention", "sliding_attention"] });
    const message = await messageOf(readGemma4Config(path));
    expect(message.split("\n")).toEqual([
      `${path}:${lineOf(path, "layer_types")}: layer_types: expected 4 entries (num_hidden_layers), got 3`,
    ]);
  });

  it("refuses sizes past any real model before anything is sized by them", async () => {
    const path = write("huge.json", { ...base, hidden_size: 1_000_000_000 });
    const message = await messageOf(readGemma4Config(path));
    expect(message).toBe(`${path}:${lineOf(path, "hidden_size")}: hidden_size: expected a number <= 131072, got 1000000000`);
  });
});
