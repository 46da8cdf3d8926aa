#!/usr/bin/env node
// Node 20's test runner takes no glob patterns, so the test files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const files = readdirSync(path.join(root, 'test'), { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.ts'))
  .sort()
  .map((f) => path.join('test', f));
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', ...files, ...process.argv.slice(2)],
  {
    cwd: root,
    stdio: 'inherit',
    // Nothing is downloaded in tests: a dataset or model not on disk fails at once (and a dry run falls back).
    env: { ...process.env, HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', WANDB_MODE: 'offline' },
  },
);
process.exit(result.status ?? 1);
