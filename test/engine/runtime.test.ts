import assert from 'node:assert/strict';
import { existsSync, readdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createReporter, type Reporter } from '../../engine/progress.ts';
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
