import { AnimindError, ValidationError } from '../engine/errors.ts';
import { userModuleFailure } from '../engine/user-modules.ts';

/** Exit codes, also listed in the README. */
export const EXIT = { ok: 0, data: 1, usage: 2, preempted: 75, interrupted: 130 } as const;

/** Prints a user-facing error on stderr (one line per problem, no stack) and returns the exit code. */
export function reportError(error: unknown): number {
  if (error instanceof ValidationError) {
    for (const problem of error.problems) process.stderr.write(`error: ${problem.oneLine()}\n`);
    process.stderr.write(`error: ${error.problems.length} problems found; nothing was run\n`);
    return error.exitCode;
  }
  if (error instanceof AnimindError) {
    if (error.exitCode !== 0) process.stderr.write(`error: ${error.oneLine()}\n`);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error: internal error: ${message.split('\n')[0]} (set ANIMIND_DEBUG=1 for the stack trace)\n`);
  if (process.env.ANIMIND_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
  return EXIT.data;
}

/**
 * Reports a promise that rejected with nothing to handle it, where Node would print its stack and
 * exit: one line like any other error, naming the node (or else the user module, with its line)
 * it came from where its stack shows that; else the error's own line, or an internal error.
 */
export function reportRejection(reason: unknown): number {
  const fromUser = userModuleFailure(reason);
  if (fromUser || reason instanceof AnimindError) return reportError(fromUser ?? reason);
  const error = new Error(`unhandled promise rejection: ${reason instanceof Error ? reason.message : String(reason)}`);
  if (reason instanceof Error) error.stack = reason.stack;
  return reportError(error);
}
