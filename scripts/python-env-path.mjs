// Where the trainer's Python interpreter lives, without installing anything.
// The venv sits in a cache outside the checkout, keyed by the sha256 of
// trainer/requirements.lock, so a changed lock gets a fresh venv and an unchanged
// one is reused across checkouts and branches.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = join('trainer', 'requirements.lock');
export const READY_MARKER = '.animind-ready';

export function lockHash(repoRoot) {
  return createHash('sha256')
    .update(readFileSync(join(repoRoot, LOCK_FILE)))
    .digest('hex');
}

export function venvDir(repoRoot, env = process.env) {
  const cacheRoot = env.ANIMIND_PYTHON_CACHE || env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cacheRoot, 'animind', `python-${lockHash(repoRoot).slice(0, 16)}`);
}

export function venvPython(venv) {
  return process.platform === 'win32' ? join(venv, 'Scripts', 'python.exe') : join(venv, 'bin', 'python');
}

/** The interpreter to run the worker with: $ANIMIND_PYTHON, else the cached venv's. */
export function pythonEnvPath(repoRoot, env = process.env) {
  return env.ANIMIND_PYTHON || venvPython(venvDir(repoRoot, env));
}

/** The trainer's interpreter for a script named `tool`; exits with a line saying how to build it when it is missing. */
export function requirePython(repoRoot, tool) {
  const python = pythonEnvPath(repoRoot);
  if (!existsSync(python)) {
    process.stderr.write(`${tool}: no trainer interpreter at ${python}; run node scripts/python-env.mjs first\n`);
    process.exit(1);
  }
  return python;
}
