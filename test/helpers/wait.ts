/**
 * Waiting in tests for the event a test cares about, never for a fixed time: a fixed sleep is
 * too short on a loaded machine (the test fails though nothing is wrong) and too long everywhere
 * else. Every wait has a deadline, so a missing event fails the test with a message saying what
 * never came instead of hanging the run.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long a wait lasts by default: far beyond what any awaited event takes, even on a loaded machine. */
export const WAIT_TIMEOUT_MS = 20_000;

export interface WaitOptions {
  /** Fails after this long; WAIT_TIMEOUT_MS by default. */
  timeoutMs?: number;
  /** How often a polled condition is checked. */
  intervalMs?: number;
}

const say = (what: string | (() => string)) => (typeof what === 'function' ? what() : what);

/**
 * Resolves once `condition` holds, checking it every `intervalMs`; rejects after `timeoutMs` with
 * "timed out after … waiting for <what>" (`what` may be a function, to report the state at the
 * deadline). The clock is performance.now(), so a test that mocks Date.now() does not stop it.
 */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string | (() => string),
  options: WaitOptions = {},
): Promise<void> {
  const { timeoutMs = WAIT_TIMEOUT_MS, intervalMs = 10 } = options;
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${say(what)}`);
    await sleep(intervalMs);
  }
}

/** `promise`'s outcome, or a rejection naming `what` if it has not settled within `timeoutMs`. */
export async function within<T>(
  promise: Promise<T>,
  what: string | (() => string),
  timeoutMs = WAIT_TIMEOUT_MS,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${say(what)}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
