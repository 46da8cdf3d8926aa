/**
 * `npm run bench:prep`: prep at real scale against a bare scan of the same rows inside SQLite.
 * USAGE below says what it measures and takes; the README's Performance section has the figures,
 * bench/README.md the measurements behind them.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { generateFixture } from '../fixtures/generate-fixture.ts';
import { digestCacheFile } from '../sinks/digest-cache.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIGESTS = digestCacheFile();
const CACHE = path.join(ROOT, '.bench-cache');
const ARTIFACT = path.resolve(ROOT, '../shared/data/animind-conservative/semantic_ids.jsonl');
const ROWS_PER_USER = 312.5;
const SIZES: Record<string, number> = { '1m': 1e6, '10m': 1e7, '100m': 1e8 };

/** The floor: the Task B rows in primary-key order, aggregated inside SQLite so no row reaches JavaScript. */
const FLOOR_SQL =
  'SELECT count(*), total(s) FROM (SELECT user_id, anime_id, score s, watching_status, watched_episodes, ' +
  'scraped_at\n  FROM user_anime WHERE watching_status IN (1,2,3,4,6) ORDER BY user_id, anime_id)';

const USAGE = `Usage: npm run bench:prep -- [options]

Builds (once, cached in .bench-cache/) fixture databases of ~312 user_anime rows a user over the
semantic-ID artifact, then for each size runs prep as a child process at the default config
(400,000 examples, every user read) and, around it, a bare scan of the same rows inside SQLite as
the floor. Prints wall time, rows/s, CPU time (all threads), peak RSS and prep/floor; the spread
of the runs goes to stderr.

Options:
  --sizes LIST          sizes to run, of 1m, 10m and 100m (default: 1m,10m). The first run of a size
                        generates its database: 100m takes ~7 min and ~8 GB of disk
  --parquet-sizes LIST  of those sizes, the ones to run again with export_parquet=true (default: 10m)
  --runs N              prep runs per size: the median times and the highest peak RSS (default: 1);
                        wall times on two cores vary by 10-20%, so compare changes with 3 or more
  --set KEY=VALUE       a pipeline parameter for every prep run; repeatable
  --warm-digests        keep prep's input digests between runs, as a user's reruns do (by default
                        each run hashes its inputs, as a first run on a database does)
  --keep                keep each run's output folder
  --semantic-ids FILE   the semantic-ID artifact (default: ../shared/data/animind-conservative/)
  --help                this text
`;

/** Options, or the process ends: usage on --help, one line for an option it does not know. */
function options() {
  try {
    const { values } = parseArgs({
      options: {
        sizes: { type: 'string', default: '1m,10m' },
        'parquet-sizes': { type: 'string', default: '10m' },
        'semantic-ids': { type: 'string', default: ARTIFACT },
        set: { type: 'string', multiple: true, default: [] },
        keep: { type: 'boolean', default: false },
        'warm-digests': { type: 'boolean', default: false },
        runs: { type: 'string', default: '1' },
        help: { type: 'boolean', default: false },
      },
    });
    if (!values.help) return values;
    process.stdout.write(USAGE);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`bench:prep: ${(error as Error).message} (see --help)\n`);
    process.exit(2);
  }
}

const args = options();

interface Measure {
  seconds: number;
  /** User and system time of every thread, from GNU time; undefined without it. */
  cpuSeconds?: number;
  peakMb: number;
}

/** A cached database per size; the file name carries every generator option, so a stale one is never reused. */
function database(size: string): { file: string; users: number } {
  const rows = SIZES[size];
  if (!rows) throw new Error(`--sizes: unknown size '${size}' (expected ${Object.keys(SIZES).join(', ')})`);
  const users = Math.round(rows / ROWS_PER_USER);
  const file = path.join(CACHE, `prep-${size}-u${users}-seed42.sqlite`);
  if (!existsSync(file)) {
    process.stderr.write(
      `generating ${path.relative(ROOT, file)} (${rows.toLocaleString('en-US')} rows; 100m takes ~7 min and ~8 GB)\n`,
    );
    generateFixture({
      out: file,
      users,
      meanRowsPerUser: ROWS_PER_USER,
      semanticIds: args['semantic-ids'],
      seed: 42,
      quiet: true,
    });
  }
  return { file, users };
}

function floor(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    const started = performance.now();
    db.prepare(FLOOR_SQL).raw(true).get();
    return (performance.now() - started) / 1000;
  } finally {
    db.close();
  }
}

const hasGnuTime = (() => {
  try {
    execFileSync('/usr/bin/time', ['-f', '%M', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Runs prep as a user would and measures it from outside: wall time around the child, CPU time
 * and peak RSS from GNU time (rusage), or else peak RSS alone by polling VmHWM. Worker threads
 * live in the same process, so these include them. On two cores prep keeps both busy most of the
 * run, so its CPU time says what a change saves with less noise than its wall time.
 */
function runPrep(file: string, extra: string[]): Promise<Measure> {
  if (DIGESTS && !args['warm-digests']) rmSync(DIGESTS, { force: true });
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'animind-bench-'));
  const prep = [
    path.join(ROOT, 'bin/animind.mjs'),
    'pipeline',
    'run',
    path.join(ROOT, 'pipelines/prep.yaml'),
    '--quiet',
    '--set',
    `database=${file}`,
    '--set',
    `semantic_ids=${args['semantic-ids']}`,
    '--set',
    'target_examples=400000',
    '--set',
    `out_dir=${outDir}`,
    ...extra.flatMap((pair) => ['--set', pair]),
  ];
  const [command, argv] = hasGnuTime
    ? ['/usr/bin/time', ['-f', 'peak_kb=%M cpu=%U+%S', process.execPath, ...prep]]
    : [process.execPath, prep];
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, argv, { stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    let polledKb = 0;
    const poll = hasGnuTime
      ? undefined
      : setInterval(() => {
          try {
            const match = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (match) polledKb = Math.max(polledKb, Number(match[1]));
          } catch {
            // The process has just exited.
          }
        }, 20);
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (poll) clearInterval(poll);
      if (!args.keep) rmSync(outDir, { recursive: true, force: true });
      const reported = /peak_kb=(\d+) cpu=([\d.]+)\+([\d.]+)/.exec(stderr);
      if (code !== 0) return reject(new Error(`prep exited with ${code}:\n${stderr.replace(/peak_kb=.*\n?/, '')}`));
      resolve({
        seconds,
        cpuSeconds: reported ? Number(reported[2]) + Number(reported[3]) : undefined,
        peakMb: (reported ? Number(reported[1]) : polledKb) / 1024,
      });
    });
  });
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;

/**
 * Runs prep `runs` times: the median wall and CPU times (a 2-core machine's timings vary by ±10%
 * run to run), the highest peak RSS, and the spread of the wall times.
 */
async function repeatPrep(file: string, extra: string[], runs: number): Promise<Measure & { spread: string }> {
  const measures: Measure[] = [];
  for (let i = 0; i < runs; i++) measures.push(await runPrep(file, extra));
  const times = measures.map((m) => m.seconds);
  const cpu = measures.map((m) => m.cpuSeconds);
  return {
    seconds: median(times),
    cpuSeconds: cpu.every((c) => c !== undefined) ? median(cpu as number[]) : undefined,
    peakMb: Math.max(...measures.map((m) => m.peakMb)),
    spread: runs > 1 ? `${fmt(Math.min(...times))}–${fmt(Math.max(...times))}` : fmt(times[0]!),
  };
}
const perSecond = (rows: number, seconds: number) => `${fmt(rows / seconds / 1e6)}M`;

async function main() {
  const sizes = args.sizes.split(',').filter(Boolean);
  const parquetSizes = new Set(args['parquet-sizes'].split(',').filter(Boolean));
  const runs = Number(args.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a positive integer, got '${args.runs}'`);
  const load = os.loadavg()[0]!;
  console.log(
    `node ${process.version}, ${os.availableParallelism()} cores, load ${fmt(load)}` +
      `${load > 1.5 ? ' (busy machine: timings are inflated)' : ''}`,
  );
  const rows: string[][] = [
    [
      'size',
      'rows',
      'users',
      'floor s',
      'floor rows/s',
      'prep s',
      'prep rows/s',
      'prep CPU s',
      'prep/floor',
      'peak RSS MB',
      'with parquet s',
      'parquet adds',
      'with parquet MB',
    ],
  ];
  for (const size of sizes) {
    const { file, users } = database(size);
    const total = SIZES[size]!;
    // Warm the page cache for both contenders, then take the better of two floors around the prep run.
    floor(file);
    const before = floor(file);
    const prep = await repeatPrep(file, args.set, runs);
    const after = floor(file);
    const best = Math.min(before, after);
    let withParquet: Measure | undefined;
    if (parquetSizes.has(size)) withParquet = await repeatPrep(file, [...args.set, 'export_parquet=true'], runs);
    rows.push([
      size,
      total.toLocaleString('en-US'),
      users.toLocaleString('en-US'),
      fmt(best),
      perSecond(total, best),
      fmt(prep.seconds),
      perSecond(total, prep.seconds),
      prep.cpuSeconds === undefined
        ? '-'
        : `${fmt(prep.cpuSeconds, 1)} (${fmt(prep.cpuSeconds / prep.seconds, 1)} cores)`,
      `${fmt(prep.seconds / best)}x`,
      fmt(prep.peakMb, 0),
      withParquet ? fmt(withParquet.seconds) : '-',
      withParquet ? `+${fmt((withParquet.seconds / prep.seconds - 1) * 100, 0)}%` : '-',
      withParquet ? fmt(withParquet.peakMb, 0) : '-',
    ]);
    const cpu = prep.cpuSeconds === undefined ? '' : `, CPU ${fmt(prep.cpuSeconds, 1)} s`;
    process.stderr.write(
      `${size}: floor ${fmt(before)}/${fmt(after)} s, prep ${prep.spread} s ` +
        `(median ${fmt(prep.seconds)}${cpu}), ${fmt(prep.peakMb, 0)} MB\n`,
    );
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((cell, i) => cell.padStart(widths[i]!)).join(' | ')} |`;
  console.log(
    [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`, ...rows.slice(1).map(line)].join(
      '\n',
    ),
  );
}

try {
  await main();
} catch (error) {
  // A bad option or a failed prep run: one line, as the CLI reports its errors.
  process.stderr.write(`bench:prep: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
