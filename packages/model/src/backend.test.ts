// Backend selection: names, forcing, and what is reported for run records.
import * as tf from "@tensorflow/tfjs";
import { expect, it } from "vitest";
import { UserError } from "@owntune/core";
import { describeBackend, initBackend, parseBackendName } from "./backend.js";

it("accepts the backend names users type and rejects others with a hint", () => {
  expect(parseBackendName("tfjs-node")).toBe("tensorflow");
  expect(parseBackendName(" WASM ")).toBe("wasm");
  expect(parseBackendName("cpu")).toBe("cpu");
  const e = (() => {
    try {
      parseBackendName("gpu", "OWNTUNE_BACKEND");
    } catch (err) {
      return err as UserError;
    }
  })();
  expect(e).toBeInstanceOf(UserError);
  expect(e!.format()).toBe('OWNTUNE_BACKEND: unknown backend "gpu"; use one of: tfjs-node, wasm, cpu');
});

it("falls back past tfjs-node to wasm, and switches when a backend is forced", async () => {
  const auto = await initBackend();
  expect(["tensorflow", "wasm"]).toContain(auto.name);
  expect(auto.threads).toBeGreaterThanOrEqual(auto.name === "wasm" ? 1 : 0);
  expect(auto.version).toBe(tf.version.tfjs);
  expect(tf.getBackend()).toBe(auto.name);
  const cpu = await initBackend({ backend: "cpu" });
  expect(cpu).toMatchObject({ name: "cpu", threads: 1, reason: "forced" });
  expect(tf.getBackend()).toBe("cpu");
  expect(describeBackend(cpu)).toBe(`cpu (1 thread, tfjs ${tf.version.tfjs}; forced)`);
  // wasm computes the same product as cpu, threads or not
  const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]);
  const onCpu = tf.matMul(a, b).arraySync();
  await initBackend({ backend: "wasm" });
  expect(tf.matMul(tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]), tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2])).arraySync()).toEqual(onCpu);
});
