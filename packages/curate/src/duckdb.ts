// DuckDB, the embedded engine behind spilled, sharded and merged runs (@duckdb/node-api, prebuilt
// binaries from npm). Loaded only when needed; when it cannot load or fails, one clear error says so.
import { RunFailure, UserError } from "@owntune/core";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";

type DuckDBModule = typeof import("@duckdb/node-api");

/** How the module is loaded (replaced in tests to check the message when it is missing). */
let importer: () => Promise<DuckDBModule> = () => import("@duckdb/node-api");

/** For tests: load DuckDB through `fn` instead (undefined restores the real import). */
export function setDuckDBImporter(fn: (() => Promise<DuckDBModule>) | undefined): void {
  importer = fn ?? (() => import("@duckdb/node-api"));
}

/** Memory DuckDB may use before it spills to its temporary folder (OWNTUNE_DUCKDB_MEMORY overrides). */
const DEFAULT_MEMORY = "1GB";

export interface Engine {
  instance: DuckDBInstance;
  db: DuckDBConnection;
  close(): void;
}

/** Opens an in-memory DuckDB whose spill files go to `tempDir`. `why` says what needs it. */
export async function openEngine(tempDir: string, threads: number, why: string): Promise<Engine> {
  let mod: DuckDBModule;
  try {
    mod = await importer();
  } catch (e) {
    throw new RunFailure(
      `DuckDB (@duckdb/node-api) could not be loaded, and ${why} needs it: ${(e as Error).message.split("\n")[0]}; ` +
        `reinstall with "pnpm install" (it ships prebuilt binaries for linux, macOS and Windows on x64 and arm64)`,
    );
  }
  try {
    const instance = await mod.DuckDBInstance.create(":memory:", {
      threads: String(Math.max(1, threads)),
      memory_limit: process.env.OWNTUNE_DUCKDB_MEMORY ?? DEFAULT_MEMORY,
      temp_directory: tempDir,
      preserve_insertion_order: "false",
    });
    const db = await instance.connect();
    return {
      instance,
      db,
      close() {
        db.closeSync();
        instance.closeSync();
      },
    };
  } catch (e) {
    throw new RunFailure(`DuckDB failed to start: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** Runs SQL; a DuckDB error becomes one line naming the step (and the file, when reading one failed). */
export async function runSql(engine: Engine, sql: string, step: string): Promise<void> {
  try {
    await engine.db.run(sql);
  } catch (e) {
    throw sqlError(e, step);
  }
}

export function sqlError(e: unknown, step: string): Error {
  if (e instanceof UserError || e instanceof RunFailure) return e;
  return new RunFailure(`DuckDB failed in ${step}: ${(e as Error).message.split("\n")[0]}`);
}

/** A SQL string literal. */
export const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;
