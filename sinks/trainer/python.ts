import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../engine/errors.ts';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

const SETUP_HINT =
  "run 'node scripts/python-env.mjs' to create the trainer's Python environment, " +
  'or set ANIMIND_PYTHON to a Python with torch, transformers and peft';

interface Candidate {
  python: string;
  from: string;
}

/** The cached trainer venv's interpreter (scripts/python-env.mjs creates it), when it exists. */
async function cachedVenvPython(): Promise<string | undefined> {
  const module = path.join(repoRoot, 'scripts', 'python-env-path.mjs');
  if (!existsSync(module)) return undefined;
  const { pythonEnvPath } = (await import(pathToFileURL(module).href)) as {
    pythonEnvPath: (root: string, env: NodeJS.ProcessEnv) => string;
  };
  // Without ANIMIND_PYTHON it names the venv's interpreter; ANIMIND_PYTHON is tried on its own first.
  const python = pythonEnvPath(repoRoot, { ...process.env, ANIMIND_PYTHON: '' });
  return existsSync(python) ? python : undefined;
}

const probes = new Map<string, Promise<string | undefined>>();

// find_spec locates the packages without importing them: importing torch and peft takes seconds.
const PROBE = `import importlib.util, sys
missing = [m for m in ("torch", "transformers", "peft") if importlib.util.find_spec(m) is None]
sys.exit("missing " + ", ".join(missing) if missing else 0)`;

/** Why the interpreter cannot run the worker, or undefined when it has torch, transformers and peft. */
function probe(python: string): Promise<string | undefined> {
  let result = probes.get(python);
  if (!result) {
    result = new Promise((resolve) => {
      const child = spawn(python, ['-c', PROBE], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
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
