// ThreadPool and serveJobs across real worker threads (running TypeScript through tsx, as in tests
// and `pnpm owntune`): results matched to their jobs, transfers, and errors crossing back intact.
import { afterAll, describe, expect, it } from "vitest";
import { UserError } from "./errors.js";
import type { EchoJob } from "./testing/echo-worker.js";
import { ThreadPool } from "./worker-thread.js";

const pool = new ThreadPool<EchoJob, Float64Array>(import.meta.url, "testing/echo-worker", 2);
afterAll(() => pool.close());

describe("ThreadPool", () => {
  it("answers each job with its own result, whichever thread ran it", async () => {
    const jobs = Array.from({ length: 20 }, (_, i) => Float64Array.from({ length: 1000 + i }, (_, k) => i * 10000 + k));
    const results = await Promise.all(jobs.map((double) => pool.run({ double })));
    results.forEach((r, i) => expect(Array.from(r)).toEqual(Array.from(jobs[i]!, (x) => 2 * x)));
  });

  it("hands a transferred buffer over (the caller's view is detached)", async () => {
    const double = Float64Array.of(1, 2, 3);
    const r = await pool.run({ double }, [double.buffer]);
    expect(Array.from(r)).toEqual([2, 4, 6]);
    expect(double.length).toBe(0);
  });

  it("rejects with a UserError that keeps its file, line and field, and goes on working", async () => {
    const e = await pool.run({ throwUser: "missing field" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).format()).toBe("data.jsonl:7: text: missing field");
    const plain = await pool.run({ throwPlain: "bad job" }).catch((x: unknown) => x);
    expect(plain).toBeInstanceOf(Error);
    expect((plain as Error).message).toBe("bad job");
    expect((plain as Error).stack).toContain("echo-worker");
    expect(Array.from(await pool.run({ double: Float64Array.of(5) }))).toEqual([10]);
  });

  it("refuses work once closed", async () => {
    const p = new ThreadPool<EchoJob, Float64Array>(import.meta.url, "testing/echo-worker", 1);
    await p.close();
    await expect(p.run({ double: Float64Array.of(1) })).rejects.toThrow("the thread pool is closed");
  });
});
