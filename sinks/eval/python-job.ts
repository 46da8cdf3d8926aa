import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DataError } from '../../engine/errors.ts';
import { repoRoot } from '../trainer/python.ts';

export interface JobEvent {
  event: string;
  [field: string]: unknown;
}

/**
 * Runs `python -m <module> <request.json>` from trainer/, whose stdout is JSON-line events: each
 * one goes to `onEvent`, stderr lines to `onLog`. Resolves with the events once it exits 0;
 * otherwise rejects with one line, its `error` event's message or its last stderr line. Aborting
 * `signal` stops it.
 */
export function runPythonJob(
  python: string,
  module: string,
  requestFile: string,
  handlers: { onEvent(event: JobEvent): void; onLog(line: string): void },
  signal?: AbortSignal,
): Promise<JobEvent[]> {
  const env = {
    ...process.env,
    PYTHONPATH: [path.join(repoRoot, 'trainer'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
    PYTHONUNBUFFERED: '1',
  };
  const child = spawn(python, ['-m', module, requestFile], {
    cwd: repoRoot,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(signal ? { signal } : {}),
  });
  const events: JobEvent[] = [];
  let error: string | undefined;
  let lastStderr: string | undefined;
  createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
    if (!line.trim()) return;
    let event: JobEvent;
    try {
      event = JSON.parse(line) as JobEvent;
    } catch {
      return handlers.onLog(line);
    }
    if (event.event === 'error') error = String(event.message);
    events.push(event);
    handlers.onEvent(event);
  });
  createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', (line) => {
    if (line.trim()) lastStderr = line.trim();
    handlers.onLog(line);
  });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => {
      if ((e as NodeJS.ErrnoException).code !== 'ABORT_ERR') error ??= `cannot start ${python}: ${e.message}`;
    });
    child.on('close', (code, how) => {
      if (code === 0) return resolve(events);
      const why = error ?? lastStderr ?? (how ? `killed by ${how}` : `exit code ${code}`);
      reject(new DataError(`${module}: ${why}`));
    });
  });
}
