// Ctrl-C and SIGTERM: by default the process stops at once (temporary files removed, nothing half
// written under a final name). A long-running command that can stop cleanly (training: finish the
// micro-batch, write a checkpoint) runs inside `withInterrupt`; then the first signal only aborts its
// AbortSignal, and a second one still stops the process at once.

let current: { controller: AbortController; notice: (signal: NodeJS.Signals) => void } | undefined;

/** While `fn` runs, the first SIGINT/SIGTERM aborts `fn`'s signal (after `notice`) instead of exiting. */
export async function withInterrupt<T>(notice: (signal: NodeJS.Signals) => void, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const previous = current;
  const controller = new AbortController();
  current = { controller, notice };
  try {
    return await fn(controller.signal);
  } finally {
    current = previous;
  }
}

/**
 * Called by the CLI's signal handler: true when a running command took the signal (the process keeps
 * running), false when the process should stop now.
 */
export function deliverInterrupt(signal: NodeJS.Signals): boolean {
  if (!current || current.controller.signal.aborted) return false;
  current.controller.abort(signal);
  current.notice(signal);
  return true;
}
