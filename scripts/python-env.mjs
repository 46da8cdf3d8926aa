#!/usr/bin/env node
// Create (or reuse) the trainer's pinned virtualenv and print its python path as the
// last stdout line. Installer output goes to stderr so stdout stays machine-readable.
//   ANIMIND_PYTHON       use this interpreter instead; nothing is built
//   ANIMIND_PYTHON_CACHE cache root (default $XDG_CACHE_HOME or ~/.cache)
//   ANIMIND_BASE_PYTHON  interpreter that creates the venv (default python3; 3.11 expected)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
  if (!existsSync(marker)) withInstallLock(venv, () => install(venv, python, marker, lock));
  console.log(python);
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/**
 * One install at a time per venv: a second run (two test runs, a test and a build) waits for the
 * first instead of deleting the venv it is filling. A lock whose holder died is taken over.
 */
function withInstallLock(venv, fn) {
  const lockDir = `${venv}.installing`;
  mkdirSync(dirname(venv), { recursive: true });
  for (let announced = false; ;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      let holder = 0;
      try {
        holder = Number(readFileSync(join(lockDir, 'pid'), 'utf8'));
      } catch {
        // Just created, pid not written yet: wait for it.
      }
      if (holder && !alive(holder)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (!announced) process.stderr.write(`python-env: waiting for another install of ${venv} (pid ${holder})\n`);
      announced = true;
      sleep(2000);
    }
  }
  try {
    fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function install(venv, python, marker, lock) {
  // The holder before us may have finished it.
  if (existsSync(marker)) return;
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

main();
