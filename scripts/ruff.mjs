#!/usr/bin/env node
// Lint and format-check trainer/ and the bench's Python (bench/*.py) with the ruff pinned in
// trainer/requirements.lock, run by the cached venv (build it first with `node
// scripts/python-env.mjs`). Settings live in trainer/ruff.toml, for both. Runs `ruff check` and
// `ruff format --check` (both, so one run shows every problem) and exits non-zero if either fails.
//   node scripts/ruff.mjs --fix   format them and apply ruff's safe fixes instead
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requirePython } from './python-env-path.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const python = requirePython(repoRoot, 'ruff');

const args = process.argv.slice(2);
const fix = args.includes('--fix');
const unknown = args.filter((arg) => arg !== '--fix');
if (unknown.length > 0) {
  process.stderr.write(`ruff: unknown argument(s) ${unknown.join(' ')}; the only option is --fix\n`);
  process.exit(2);
}

// --no-cache: nothing is written into the checkout (.ruff_cache), and the trainer is small.
// --config: bench/ has no settings of its own; ruff would otherwise apply its defaults there.
const paths = ['--no-cache', '--config', 'trainer/ruff.toml', 'trainer', 'bench'];
const steps = fix
  ? [
      ['format', ...paths],
      ['check', '--fix', ...paths],
    ]
  : [
      ['check', ...paths],
      ['format', '--check', '--diff', ...paths],
    ];

let failed = false;
for (const step of steps) {
  const result = spawnSync(python, ['-m', 'ruff', ...step], { cwd: repoRoot, stdio: 'inherit' });
  if (result.error) {
    process.stderr.write(`ruff: cannot run ${python}: ${result.error.message}\n`);
    process.exit(1);
  }
  if (result.status !== 0) {
    process.stderr.write(`ruff: \`ruff ${step.join(' ')}\` exited with ${result.status ?? result.signal}\n`);
    failed = true;
  }
}
if (failed && !fix) {
  process.stderr.write('ruff: to fix, run node scripts/ruff.mjs --fix and then fix by hand what remains\n');
}
process.exit(failed ? 1 : 0);
