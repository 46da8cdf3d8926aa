/** Where a problem is, so the one-line message can point a user straight at it. */
export interface Location {
  file?: string;
  line?: number;
  node?: string;
  key?: string;
}

/** Base of every error a user can cause: the CLI prints `message` on one line and exits with `exitCode`. */
export class AnimindError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly location: Location = {},
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** The single line shown to the user. */
  oneLine(): string {
    const { file, line, node, key } = this.location;
    const where = [file && (line ? `${file}:${line}` : file), node && `node '${node}'`, key && `key '${key}'`]
      .filter(Boolean)
      .join(': ');
    const text = this.message.replace(/\s*\n\s*/g, ' ');
    return where && !text.includes(where) ? `${where}: ${text}` : text;
  }
}

/** A mistake in the pipeline file, the config or the command line (exit 2). */
export class ConfigError extends AnimindError {
  constructor(message: string, location: Location = {}) {
    super(message, 2, location);
  }
}

/** Several config problems found in one validation pass, reported together. */
export class ValidationError extends ConfigError {
  constructor(readonly problems: ConfigError[]) {
    super(`${problems.length} problem${problems.length === 1 ? '' : 's'} in the pipeline`);
  }
}

/** Bad input data or a failure while running (exit 1). */
export class DataError extends AnimindError {
  constructor(message: string, location: Location = {}) {
    super(message, 1, location);
  }
}

/** The run was stopped by Ctrl-C or SIGTERM (exit 130). */
export class InterruptedError extends AnimindError {
  constructor(signal: string) {
    super(`interrupted by ${signal}`, 130);
  }
}

/**
 * A graceful stop (SIGTERM, SIGUSR1) was honoured: the work in hand was finished and saved so a
 * later run can resume from it (exit 75, EX_TEMPFAIL: a job script requeues on it).
 */
export class PreemptedError extends AnimindError {
  constructor(message: string) {
    super(message, 75);
  }
}

/** Wraps anything thrown inside a node so the message names the node. */
export function attributeToNode(error: unknown, node: string): AnimindError {
  if (error instanceof AnimindError) {
    if (!error.location.node) (error.location as Location).node = node;
    return error;
  }
  const message = error instanceof Error ? error.message : String(error);
  const wrapped = new DataError(message, { node });
  if (error instanceof Error) wrapped.stack = error.stack;
  return wrapped;
}

/** Calls whose failure means bytes did not reach an output: a full disk, a quota, an I/O error. */
const WRITE_CALLS = new Set(['write', 'writev', 'close', 'fsync', 'fdatasync']);

/**
 * A system error met while a node wrote its outputs, as a line naming the files the user asked
 * for: Node's own message names the call and, at most, the temporary file the run writes first.
 * Any other error is returned as it is.
 */
export function writeFailure(error: unknown, outputs: readonly string[]): unknown {
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (
    !outputs.length ||
    error instanceof AnimindError ||
    !(error instanceof Error) ||
    typeof code !== 'string' ||
    !WRITE_CALLS.has(syscall ?? '')
  )
    return error;
  const reason = error.message.replace(/^E[A-Z0-9]+: /, '').replace(/, [a-z]+$/, '');
  return new DataError(`cannot write ${outputs.join(', ')}: ${reason} (${code})`);
}

/** The reader of stdout went away (`| head`): the run stops quietly with exit 0. */
export class OutputClosedError extends AnimindError {
  constructor() {
    super('standard output was closed by its reader', 0);
  }
}
