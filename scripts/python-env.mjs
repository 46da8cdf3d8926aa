#!/usr/bin/env node
// Create (or reuse) the trainer's pinned virtualenv and print its python path as the
// last stdout line. Installer output goes to stderr so stdout stays machine-readable.
//   ANIMIND_PYTHON       use this interpreter instead; nothing is built
//   ANIMIND_PYTHON_CACHE cache root (default $XDG_CACHE_HOME or ~/.cache)
//   ANIMIND_BASE_PYTHON  interpreter that creates the venv (default python3; 3.11 expected)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOCK_FILE, READY_MARKER, lockHash, venvDir, venvPython } from './python-env-path.mjs';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  process.stderr.write(`python-env: ${message}\n`);
  process.exit(1);
}

function run(command, args) {
  const result = spawnSync(command, args, { stdio: ['ignore', process.stderr, process.stderr] });
  if (result.error) fail(`cannot run ${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`${command} ${args.join(' ')} exited with ${result.status ?? result.signal}`);
}

function main() {
  if (process.env.ANIMIND_PYTHON) {
    process.stderr.write('python-env: ANIMIND_PYTHON is set; using it as is\n');
    console.log(process.env.ANIMIND_PYTHON);
    return;
  }
  const lock = join(repoRoot, LOCK_FILE);
  if (!existsSync(lock)) fail(`missing ${LOCK_FILE}`);
  const venv = venvDir(repoRoot);
  const python = venvPython(venv);
  const marker = join(venv, READY_MARKER);
  if (!existsSync(marker)) {
    // No marker means a previous install was interrupted: start clean rather than trust it.
    rmSync(venv, { recursive: true, force: true });
    mkdirSync(dirname(venv), { recursive: true });
    process.stderr.write(`python-env: creating ${venv}\n`);
    run(process.env.ANIMIND_BASE_PYTHON || 'python3', ['-m', 'venv', venv]);
    run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', lock]);
    writeFileSync(
      marker,
      `${JSON.stringify({ lock_sha256: lockHash(repoRoot), created_at: new Date().toISOString() })}\n`,
    );
  }
  console.log(python);
}

main();
