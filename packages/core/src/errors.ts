// The one error type for bad usage, bad config or bad input: the CLI turns it into exit code 2 and
// a single located line. Anything else thrown is a bug (exit 1).

export interface UserErrorLocation {
  /** File the problem is in, as the user named it (relative paths stay relative). */
  file?: string;
  /** 1-based line in that file. */
  line?: number;
  /** Dotted path of the offending field, e.g. `train.lr`. */
  field?: string;
  /** How to fix it, printed after the message. */
  hint?: string;
}

/** A problem with what the user gave us (file, flag, config): exit 2, one clear message. */
export class UserError extends Error {
  readonly file?: string;
  readonly line?: number;
  readonly field?: string;
  readonly hint?: string;

  constructor(message: string, where: UserErrorLocation = {}) {
    super(message);
    this.name = "UserError";
    this.file = where.file;
    this.line = where.line;
    this.field = where.field;
    this.hint = where.hint;
  }

  /** `file:line: field: message; hint` — the shape every user-facing error takes. */
  format(): string {
    let prefix = "";
    if (this.file !== undefined) prefix += this.line !== undefined ? `${this.file}:${this.line}: ` : `${this.file}: `;
    if (this.field !== undefined && this.field !== "") prefix += `${this.field}: `;
    return prefix + this.message + (this.hint ? `; ${this.hint}` : "");
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/**
 * A run that ended in an expected failure (a verify outside tolerance, a training run stopped by a
 * non-finite loss): exit 1 with one line, no stack and no "this is a bug". `file` names the record
 * the user should read (verify.json, metrics.jsonl).
 */
export class RunFailure extends Error {
  readonly file?: string;

  constructor(message: string, where: { file?: string } = {}) {
    super(message);
    this.name = "RunFailure";
    this.file = where.file;
  }

  format(): string {
    return this.message + (this.file !== undefined ? ` (see ${this.file})` : "");
  }
}

export function isRunFailure(e: unknown): e is RunFailure {
  return e instanceof RunFailure;
}
