import { AnimindError, ValidationError } from '../engine/errors.ts';

/** Exit codes, also listed in the README. */
export const EXIT = { ok: 0, data: 1, usage: 2, interrupted: 130 } as const;

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
