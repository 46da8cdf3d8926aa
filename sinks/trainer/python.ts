import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../engine/errors.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

const SETUP_HINT =
  "run 'node scripts/python-env.mjs' to create the trainer's Python environment, or set ANIMIND_PYTHON to a Python with torch, transformers and peft";

interface Candidate {
  python: string;
  from: string;
}

/** The cached virtual environment scripts/python-env.mjs creates, when it exists. */
async function cachedVenvPython(): Promise<string | undefined> {
  const module = path.join(repoRoot, 'scripts', 'python-env-path.mjs');
  if (!existsSync(module)) return undefined;
  const { pythonEnvPath } = (await import(pathToFileURL(module).href)) as { pythonEnvPath: (root: string) => string };
  const found = pythonEnvPath(repoRoot);
  const python = existsSync(found) && statSync(found).isDirectory() ? path.join(found, 'bin', 'python') : found;
  return existsSync(python) ? python : undefined;
}

const probes = new Map<string, Promise<string | undefined>>();

/** Why the interpreter cannot run the worker, or undefined when it has torch, transformers and peft. */
function probe(python: string): Promise<string | undefined> {
  let result = probes.get(python);
  if (!result) {
    result = new Promise((resolve) => {
      const child = spawn(python, ['-c', 'import torch, transformers, peft'], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.on('error', (error) => resolve(error.message));
      child.on('close', (code) => {
        const last = stderr.trim().split('\n').at(-1);
        resolve(code === 0 ? undefined : (last ?? `exit code ${code}`));
      });
    });
    probes.set(python, result);
  }
  return result;
}

/**
 * The interpreter for the trainer worker: ANIMIND_PYTHON, then the cached trainer venv, then the
 * configured one; the first that can import torch, transformers and peft.
 */
export async function findPython(configured: string): Promise<string> {
  const candidates: Candidate[] = [];
  if (process.env.ANIMIND_PYTHON) candidates.push({ python: process.env.ANIMIND_PYTHON, from: 'ANIMIND_PYTHON' });
  const venv = await cachedVenvPython();
  if (venv) candidates.push({ python: venv, from: 'the cached trainer venv' });
  if (configured) candidates.push({ python: configured, from: "the 'python' option" });
  const failures: string[] = [];
  for (const candidate of candidates) {
    const problem = await probe(candidate.python);
    if (!problem) return candidate.python;
    failures.push(`${candidate.python} from ${candidate.from}: ${problem}`);
  }
  const tried = failures.length ? ` (tried ${failures.join('; ')})` : '';
  throw new ConfigError(`no Python with torch, transformers and peft for the trainer${tried}: ${SETUP_HINT}`);
}
