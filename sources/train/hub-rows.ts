import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../../sinks/trainer/python.ts';

/** A dataset on the Hugging Face hub (or in its cache): what `datasets.load_dataset` is given. */
export interface HubDataset {
  id: string;
  config?: string;
  split: string;
}

/** The dataset could not be loaded (offline and not cached, no such dataset, no `datasets`): one line why. */
export class HubUnavailable extends Error {}

const CANNOT_LOAD = 3;

/**
 * The first `maxRows` rows of a hub dataset as parsed JSON objects, read through the trainer's
 * Python (`python -m animind_trainer.hub_rows`, which uses `datasets` and so the HF cache and
 * HF_HUB_OFFLINE). The child is stopped when the caller stops reading or `signal` aborts.
 */
export async function* hubRows(
  python: string,
  dataset: HubDataset,
  maxRows: number,
  cacheDir: string,
  signal?: AbortSignal,
): AsyncGenerator<Record<string, unknown>> {
  const args = ['-m', 'animind_trainer.hub_rows', dataset.id, '--split', dataset.split, '--max-rows', String(maxRows)];
  if (dataset.config) args.push('--config', dataset.config);
  if (cacheDir) args.push('--cache-dir', cacheDir);
  const env = {
    ...process.env,
    PYTHONPATH: [path.join(repoRoot, 'trainer'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
  };
  const child = spawn(python, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => {});
  try {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity }))
      if (line.trim()) yield JSON.parse(line) as Record<string, unknown>;
    const code = await exited;
    const why = stderr.trim().split('\n').at(-1) ?? '';
    if (code === CANNOT_LOAD) throw new HubUnavailable(why);
    if (code !== 0) throw new HubUnavailable(`python -m animind_trainer.hub_rows exited with ${code}: ${why}`);
  } finally {
    if (child.exitCode === null) child.kill();
  }
}
