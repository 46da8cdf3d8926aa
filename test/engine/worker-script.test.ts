import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { workerScript } from '../../engine/worker-script.ts';

test('workerScript bundles a TypeScript worker into plain JavaScript that a thread runs without the loader', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-worker-script-'));
  writeFileSync(path.join(dir, 'double.ts'), 'export const double = (n: number): number => n * 2;\n');
  writeFileSync(
    path.join(dir, 'entry.ts'),
    "import { parentPort, workerData } from 'node:worker_threads';\nimport { double } from './double.ts';\nparentPort!.postMessage(double(workerData as number));\n",
  );
  const entry = pathToFileURL(path.join(dir, 'entry.ts'));
  const script = workerScript(entry);
  assert.equal(workerScript(entry).href, script.href, 'built once per run');
  assert.match(path.basename(script.pathname), /^entry-[0-9a-f]{16}\.mjs$/);
  assert.doesNotMatch(readFileSync(script, 'utf8'), /: number/);

  // execArgv [] drops the test runner's --import tsx: the thread has no TypeScript loader.
  const worker = new Worker(script, { workerData: 21, execArgv: [] });
  const [answer] = await once(worker, 'message');
  assert.equal(answer, 42);
  await worker.terminate();
});
