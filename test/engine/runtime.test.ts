import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AnimindError, DataError } from '../../engine/errors.ts';
import { defineTransform, port } from '../../engine/node.ts';
import { createReporter, type Reporter } from '../../engine/progress.ts';
import { runTransform } from '../../engine/run-node.ts';
import { runPlan } from '../../engine/runtime.ts';
import { loadTestPlan as loadPlan } from '../helpers/plan.ts';
import { probe } from './nodes/probe.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const pipeline = (name: string) => path.join(here, 'pipelines', name);
const quiet = createReporter({ mode: 'quiet', format: 'text' });

test('a slow sink keeps a fast source at most a few batches ahead while a million rows pass', async () => {
  probe.reset();
  const plan = await loadPlan(pipeline('backpressure.yaml'));
  await runPlan(plan, { reporter: quiet });
  assert.equal(probe.consumed, 1_000_000);
  assert.ok(probe.maxInFlight <= 500, `rows buffered between source and sink peaked at ${probe.maxInFlight}`);
});

test('a failing sink stops the graph and closes its sources', async () => {
  probe.reset();
  const plan = await loadPlan(pipeline('backpressure.yaml'), { fail_after: '20000' });
  await assert.rejects(runPlan(plan, { reporter: quiet }), (error: Error & { location?: { node?: string } }) => {
    assert.match(error.message, /sink gave up after 20000 rows/);
    assert.equal(error.location?.node, 'slow');
    return true;
  });
  assert.ok(probe.produced < 30_000, `source kept producing after the failure (${probe.produced})`);
  assert.deepEqual(probe.closed, ['numbers']);
});

test('an error in a transform names the node, closes the source and leaves no partial output', async () => {
  probe.reset();
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-fail-'));
  const out = path.join(dir, 'nested', 'rows.jsonl');
  const plan = await loadPlan(pipeline('fail.yaml'), { out });
  await assert.rejects(runPlan(plan, { reporter: quiet }), /row 5000 is bad/);
  assert.deepEqual(probe.closed, ['numbers']);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(dir), [], 'neither the temporary file nor the created folder is left behind');
});

test('aborting a run (as Ctrl-C does) stops it and leaves no partial output', async () => {
  probe.reset();
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-abort-'));
  const out = path.join(dir, 'rows.jsonl');
  const plan = await loadPlan(pipeline('fail.yaml'), { out, at: '-1' });
  const controller = new AbortController();
  // Interrupts as the sink reports its first rows written: the output file is begun and the run
  // is midway, whatever the machine's speed (a timer could fire before the run starts or after it ends).
  let written = 0;
  const reporter: Reporter = {
    ...quiet,
    forNode: (node) => ({
      ...quiet.forNode(node),
      counter: () => ({
        add: (n) => {
          if (node !== 'write') return;
          written += n;
          controller.abort(new Error('interrupted by SIGINT'));
        },
        setTotal() {},
        done() {},
      }),
    }),
  };
  await assert.rejects(runPlan(plan, { reporter, signal: controller.signal }), /interrupted/);
  assert.ok(written > 0 && written < 100_000, `interrupted after ${written} of 100000 rows were written`);
  assert.deepEqual(readdirSync(dir), []);
  assert.deepEqual(probe.closed, ['numbers']);
});

test('a full disk while writing is one line naming the output asked for, and leaves nothing behind', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-full-'));
  const out = path.join(dir, 'rows.jsonl');
  // The sink writes its temporary file first; pointed at /dev/full, every write fails as on a full disk.
  symlinkSync('/dev/full', path.join(dir, `.rows.jsonl.tmp-${process.pid}`));
  const plan = await loadPlan(pipeline('fail.yaml'), { out, at: '-1' });
  await assert.rejects(runPlan(plan, { reporter: quiet }), (error: Error & { oneLine(): string }) => {
    assert.equal(error.oneLine(), `node 'write': cannot write ${out}: no space left on device (ENOSPC)`);
    return true;
  });
  assert.deepEqual(readdirSync(dir), []);
});

/** A reporter that keeps the log lines, as `[node] message`, and runs `onWritten` as the sink 'write' counts rows. */
function recording(onWritten: () => void = () => {}): Reporter & { logs: string[] } {
  const logs: string[] = [];
  return {
    ...quiet,
    logs,
    forNode: (node) => ({
      ...quiet.forNode(node),
      log: (message) => void logs.push(`[${node}] ${message}`),
      counter: () => ({ add: () => node === 'write' && onWritten(), setTotal() {}, done() {} }),
    }),
  };
}

/** The pid of a process that has exited: nothing runs with it any more. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await once(child, 'exit');
  return child.pid!;
}

test('a run holds its output folder with a lock file naming its pid, and removes it when it succeeds', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-lock-'));
  const lock = path.join(dir, '.animind.lock');
  const seen = new Set<string>();
  const reporter = recording(() => seen.add(readFileSync(lock, 'utf8')));
  await runPlan(await loadPlan(pipeline('fail.yaml'), { out: path.join(dir, 'rows.jsonl'), at: '-1' }), { reporter });
  assert.deepEqual([...seen], [`${process.pid}\n`], 'the lock held this process id while rows were written');
  assert.deepEqual(readdirSync(dir), ['rows.jsonl']);
  assert.deepEqual(reporter.logs, [], 'a folder with nothing left behind in it gets no word');
});

test('a run into a folder a live process holds is refused before any node starts, naming that pid', async (t) => {
  probe.reset();
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-held-'));
  const lock = path.join(dir, '.animind.lock');
  // A process that stands for another run writing into the folder.
  const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)']);
  t.after(() => other.kill());
  writeFileSync(lock, `${other.pid}\n`);
  const plan = await loadPlan(pipeline('fail.yaml'), { out: path.join(dir, 'rows.jsonl'), at: '-1' });
  await assert.rejects(runPlan(plan, { reporter: quiet }), (error: DataError) => {
    assert.ok(error instanceof DataError, 'exit 1: the folder is busy, the pipeline is fine');
    assert.equal(
      error.oneLine(),
      `node 'write': ${dir} is in use by another animind run (pid ${other.pid}, lock file ${lock}): wait for it ` +
        `to finish or write to another folder (delete the lock file only if pid ${other.pid} is not an animind run)`,
    );
    return true;
  });
  assert.deepEqual(probe.closed, [], 'the source was never started');
  assert.deepEqual(readdirSync(dir), ['.animind.lock']);
  assert.equal(readFileSync(lock, 'utf8'), `${other.pid}\n`, "the other run's lock is left as it was");
});

test('a run takes over the lock of a process that no longer runs, and removes its temporary files', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-stale-'));
  const [dead, alive] = [await deadPid(), process.ppid];
  writeFileSync(path.join(dir, '.animind.lock'), `${dead}\n`);
  writeFileSync(path.join(dir, `.rows.jsonl.tmp-${dead}`), 'x'.repeat(1_500_000));
  writeFileSync(path.join(dir, `.other.json.tmp-${dead}`), '{}');
  // A temporary file of a process that runs (here the test runner) is someone's work in progress: it stays.
  writeFileSync(path.join(dir, `.notes.txt.tmp-${alive}`), '');
  const reporter = recording();
  await runPlan(await loadPlan(pipeline('fail.yaml'), { out: path.join(dir, 'rows.jsonl'), at: '-1' }), { reporter });
  assert.deepEqual(readdirSync(dir).sort(), [`.notes.txt.tmp-${alive}`, 'rows.jsonl']);
  assert.deepEqual(reporter.logs, [
    `[write] ${dir}: removed 2 temporary files (.other.json.tmp-${dead}, .rows.jsonl.tmp-${dead}; 1.5 MB) ` +
      `and the lock .animind.lock left by a run that no longer runs (pid ${dead})`,
  ]);
});

test('a batch that is not an array is blamed on the node that emitted it, not on the one downstream', async () => {
  const scalars = defineTransform({
    type: 'scalars',
    kind: 'transform',
    description: 'emits a number where a batch belongs',
    options: z.object({}),
    inputs: { in: port() },
    // @ts-expect-error the types stop a TypeScript node; a JavaScript one has none to stop it
    create: (_ctx, inputs) => inputs.ports.in.map((batch) => batch.length),
  });
  await assert.rejects(runTransform(scalars, {}, { in: [[1, 2]] }, { id: 'counts' }), (error: AnimindError) => {
    assert.equal(
      error.oneLine(),
      "node 'counts': emitted a batch that is not an array of rows (got number); a node passes on arrays",
    );
    return true;
  });
});
