import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { cacheFolder } from '../../engine/cache-folder.mjs';
import { setCompiledModules, workerScript, writeScript } from '../../engine/worker-script.ts';
import { repoRoot } from '../helpers/cli.ts';

test(
  'workerScript bundles a TypeScript worker into plain ' + 'JavaScript that a thread runs without the loader',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'animind-worker-script-'));
    writeFileSync(path.join(dir, 'double.ts'), 'export const double = (n: number): number => n * 2;\n');
    writeFileSync(
      path.join(dir, 'entry.ts'),
      "import { parentPort, workerData } from 'node:worker_threads';\n" +
        "import { double } from './double.ts';\n" +
        'parentPort!.postMessage(double(workerData as number));\n',
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
  },
);

test(
  'where the project cache cannot be written, a worker ' +
    'script goes to the next folder and still finds its packages',
  async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'animind-worker-script-'));
    const blocked = path.join(dir, 'read-only');
    writeFileSync(blocked, '');
    const code = Buffer.from(
      "import { parentPort } from 'node:worker_threads';\n" +
        "import { z } from 'zod';\n" +
        'parentPort.postMessage(z.number().parse(42));\n',
    );
    const fallback = path.join(dir, 'temporary');
    const folder = () => cacheFolder([blocked, fallback], path.join(repoRoot, 'node_modules'));
    const file = writeScript('uses-zod.mjs', code, folder());
    assert.equal(path.dirname(file), fallback);
    assert.equal(writeScript('uses-zod.mjs', code, folder()), file, 'a second run finds it and the link');

    const worker = new Worker(pathToFileURL(file), { execArgv: [] });
    const [answer] = await once(worker, 'message');
    assert.equal(answer, 42);
    await worker.terminate();
  },
);

test('run compiled, a worker loads its entry from the CLI build and nothing is bundled', () => {
  const entry = pathToFileURL(
    path.join(mkdtempSync(path.join(tmpdir(), 'animind-worker-script-')), 'compiled-entry.ts'),
  );
  const compiled = pathToFileURL(path.join(tmpdir(), 'cli-build', 'compiled-entry.mjs')).href;
  setCompiledModules((source) => (source === fileURLToPath(entry) ? compiled : undefined));
  try {
    // The entry does not even exist: a bundle would fail; the compiled module is used as it is.
    assert.equal(workerScript(entry).href, compiled);
  } finally {
    setCompiledModules(() => undefined);
  }
});
