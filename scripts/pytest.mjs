#!/usr/bin/env node
// Run the trainer's pytest suite with the cached venv (build it first with
// `node scripts/python-env.mjs`). Extra arguments go to pytest. Exit status is
// pytest's, except that "no tests collected" (5) is a failure too.
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirePython } from './python-env-path.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const python = requirePython(repoRoot, 'pytest');
const result = spawnSync(python, ['-m', 'pytest', join('trainer', 'tests'), '-q', ...process.argv.slice(2)], {
  cwd: repoRoot,
  stdio: 'inherit',
  // Nothing is downloaded in tests.
  env: { ...process.env, PYTHONPATH: join(repoRoot, 'trainer'), HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1' },
});
if (result.error) {
  process.stderr.write(`pytest: cannot run ${python}: ${result.error.message}\n`);
  process.exit(1);
}
if (result.status === 5) {
  process.stderr.write('pytest: no tests were collected\n');
  process.exit(1);
}
process.exit(result.status ?? 1);
