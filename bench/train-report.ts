/**
 * The figures of `npm run bench:train` (bench/train.ts): what a run's summary and the baseline's
 * result say per preset, as table rows, and the table. USAGE in bench/train.ts has the formulas.
 */

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

export interface Preset {
  hidden: number;
  layers: number;
  tied: boolean;
  description: string;
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

export interface RunSummary {
  vocab_size: number;
  added_tokens: number;
  runtime: { device: string; gpu_name: string | null; world_size: number };
  phases: { step_timings: StepTiming[] }[];
  performance: Performance;
}

export interface Row {
  run: string;
  stack: string;
  tokensPerS?: number;
  mfu?: number;
  peakBytes?: number;
  nonPadding?: number;
  pipeWait?: number;
}

/** What both stacks run; bench.json in a --record-frames folder. */
export interface Settings {
  warmup: number;
  steps: number;
  seqLen: number;
  globalRows: number;
  device: 'cpu' | 'cuda';
  prep: string;
  context: number;
  presets: string[];
}

const peakFlops = (gpu: string | null | undefined) => PEAK_BF16.find(([name]) => gpu && name.test(gpu))?.[1];

/** Model FLOPs per token (USAGE has the formula). */
const flopsPerToken = (n: number, trainable: number, preset: Preset, context: number) =>
  4 * n + 2 * trainable + 12 * preset.layers * preset.hidden * context;

export function measureOurs(name: string, preset: Preset, summary: RunSummary, settings: Settings): Row {
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
    stack: `animind (${[
      performance.attention,
      `${performance.loss} loss`,
      `micro-batch ${performance.micro_batch_rows ?? 'as sent'}`,
      ...(performance.gradient_checkpointing ? ['checkpointing'] : []),
      ...(performance.compile ? ['compiled'] : []),
    ].join(', ')})`,
    tokensPerS,
    mfu: peak && (tokensPerS * flopsPerToken(n, nTrainable, preset, settings.context)) / (peak * world),
    peakBytes: performance.peak_memory_bytes,
    nonPadding: sum('real_tokens') / sum('input_tokens'),
    pipeWait: sum('pipe_wait_s') / seconds,
  };
}

export interface BaselineResult {
  stack: string;
  tokens_per_s: number | null;
  non_padding_share: number | null;
  peak_memory_bytes: number;
  flops_params: { total: number; trainable: number };
}

export function measureBaseline(
  name: string,
  preset: Preset,
  summary: RunSummary,
  result: BaselineResult,
  settings: Settings,
): Row {
  const world = summary.runtime.world_size;
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

/** A baseline that fails (out of memory, say) is a result too: our figures stand beside it. */
export const failedBaseline = (name: string, message: string): Row => ({
  run: `${name} baseline`,
  stack: `failed: ${message.slice(0, 120)}`,
});

const fixed = (n: number | undefined, digits: number, suffix = '') =>
  n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(digits)}${suffix}`;
const percent = (share: number | undefined) => fixed(share === undefined ? undefined : share * 100, 1, '%');
const gib = (bytes: number | undefined) => fixed(bytes === undefined ? undefined : bytes / 2 ** 30, 2, ' GiB');

export function table(rows: Row[]): string {
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

export const header = (machine: string, rows: number, settings: Settings) =>
  `${machine}; ${rows} prep rows, ${settings.seqLen} tokens a sequence, ` +
  `${settings.globalRows} sequences a step, ${settings.warmup} warm-up + ${settings.steps} timed steps; ` +
  `mean attended context ${fixed(settings.context, 1)} tokens`;
