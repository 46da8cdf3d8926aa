/**
 * `npm run bench:jsonl`: jsonl-source's reading (the line reader and JSON.parse per line) against
 * the `ndjson` package, on a prep-sized JSON-lines file. USAGE below says what it measures and
 * takes; bench/README.md has the figures and the decision they made.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import ndjson from 'ndjson';
import { readLineBatches } from '../engine/line-reader.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
const SAMPLE = path.join(ROOT, 'test/golden/prep/llm_prep_train.jsonl');

const USAGE = `Usage: npm run bench:jsonl -- [options]

Writes a JSON-lines file of prep rows (the lines of test/golden/prep/llm_prep_train.jsonl, repeated;
~540 bytes a row, so 400,000 rows are ~215 MB) to a temporary folder, then reads it in a child
process per run with each contender, the runs interleaved:

  current   jsonl-source's path: readLineBatches(file, 1024, signal) from engine/line-reader.ts
            (1 MiB reads) and JSON.parse on every non-blank line
  ndjson    fs.createReadStream(file).pipe(ndjson.parse()), counting 'data' events
  floor     the file's bytes read in 1 MiB chunks, nothing decoded

The child times the read itself (its start-up and the TypeScript loader are left out) and reports
its CPU time and peak RSS (getrusage: the whole process, its ~75 MB start-up included). Prints
median wall time, rows/s, median CPU time and the highest peak RSS of each, and ndjson/current;
the spread of the runs goes to stderr.

Options:
  --rows N     rows in the file (default: 400000)
  --runs K     runs of each contender (default: 3); wall times on two cores vary by 10-20%
  --keep       keep the temporary folder and print its path
  --help       this text
`;

const CONTENDERS = ['current', 'ndjson', 'floor'] as const;
type Contender = (typeof CONTENDERS)[number];

interface Measure {
  rows: number;
  seconds: number;
  cpuSeconds: number;
  peakMb: number;
}

/** Options, or the process ends: usage on --help, one line for an option it does not know. */
function options() {
  try {
    const { values } = parseArgs({
      options: {
        rows: { type: 'string', default: '400000' },
        runs: { type: 'string', default: '3' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
        // Internal: the child process's side.
        child: { type: 'string' },
        file: { type: 'string' },
      },
    });
    if (!values.help) return values;
    process.stdout.write(USAGE);
    process.exit(0);
  } catch (error) {
    process.stderr.write(`bench:jsonl: ${(error as Error).message} (see --help)\n`);
    process.exit(2);
  }
}

const args = options();

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got '${value}'`);
  return n;
}

/** The sample's lines repeated to `rows` rows, written in blocks of the whole sample. */
async function writeFile(file: string, rows: number): Promise<void> {
  const lines = readFileSync(SAMPLE, 'utf8')
    .split('\n')
    .filter((line) => line.trim());
  const block = lines.join('\n') + '\n';
  const out = createWriteStream(file);
  const write = async (text: string) => {
    if (!out.write(text)) await once(out, 'drain');
  };
  for (let left = rows; left > 0; left -= lines.length) {
    await write(left >= lines.length ? block : lines.slice(0, left).join('\n') + '\n');
  }
  out.end();
  await once(out, 'finish');
}

/** jsonl-source's reading, without the node around it. */
async function readCurrent(file: string): Promise<number> {
  const signal = new AbortController().signal;
  let count = 0;
  for await (const lines of readLineBatches(file, 1024, signal)) {
    const batch: unknown[] = [];
    for (const line of lines) {
      if (!line.text.trim()) continue;
      batch.push(JSON.parse(line.text));
    }
    count += batch.length;
  }
  return count;
}

function readNdjson(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let count = 0;
    const input = createReadStream(file);
    const parser = input.pipe(ndjson.parse());
    input.on('error', reject);
    parser.on('error', reject);
    parser.on('data', () => count++);
    parser.on('end', () => resolve(count));
  });
}

async function readFloor(file: string): Promise<number> {
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) bytes += (chunk as Buffer).length;
  return bytes;
}

/** The child's side: read the file one way, print one JSON line of figures. */
async function child(contender: Contender, file: string): Promise<void> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const count = await (contender === 'current'
    ? readCurrent(file)
    : contender === 'ndjson'
      ? readNdjson(file)
      : readFloor(file));
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const measure: Measure = {
    rows: contender === 'floor' ? -1 : count,
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    peakMb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(measure) + '\n');
}

function runChild(contender: Contender, file: string): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--child', contender, '--file', file], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (chunk) => (stdout += chunk));
    proc.stderr.on('data', (chunk) => (stderr += chunk));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${contender} exited with ${code}:\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as Measure);
    });
  });
}

const fmt = (n: number, digits = 2) => n.toFixed(digits);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)]!;

async function main() {
  const rows = positiveInt('rows', args.rows);
  const runs = positiveInt('runs', args.runs);
  const load = os.loadavg()[0]!;
  const busy = load > 1.5 ? ' (busy machine: timings are inflated)' : '';
  console.log(`node ${process.version}, ${os.availableParallelism()} cores, load ${fmt(load)}${busy}`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'animind-bench-jsonl-'));
  try {
    const file = path.join(dir, 'rows.jsonl');
    process.stderr.write(`writing ${rows.toLocaleString('en-US')} rows to ${file}\n`);
    await writeFile(file, rows);
    const bytes = statSync(file).size;
    console.log(`${rows.toLocaleString('en-US')} rows, ${fmt(bytes / 1e6, 0)} MB, ${runs} runs each, interleaved`);
    await readFloor(file); // the page cache warm for every contender
    const measures = new Map<Contender, Measure[]>(CONTENDERS.map((c) => [c, []]));
    for (let run = 0; run < runs; run++) {
      // A different contender first in each round, so none always follows the same one.
      const order = CONTENDERS.map((_, i) => CONTENDERS[(i + run) % CONTENDERS.length]!);
      for (const contender of order) {
        const measure = await runChild(contender, file);
        if (contender !== 'floor' && measure.rows !== rows) {
          throw new Error(`${contender} read ${measure.rows} rows, expected ${rows}`);
        }
        measures.get(contender)!.push(measure);
        const { seconds, cpuSeconds, peakMb } = measure;
        process.stderr.write(
          `run ${run + 1} ${contender}: ${fmt(seconds)} s, CPU ${fmt(cpuSeconds)} s, ${fmt(peakMb, 0)} MB\n`,
        );
      }
    }
    const table: string[][] = [
      ['reader', 'median s', 'spread s', 'rows/s', 'MB/s', 'CPU s', 'peak RSS MB', 'vs current'],
    ];
    const current = median(measures.get('current')!.map((m) => m.seconds));
    for (const contender of CONTENDERS) {
      const list = measures.get(contender)!;
      const times = list.map((m) => m.seconds);
      const seconds = median(times);
      table.push([
        contender,
        fmt(seconds),
        `${fmt(Math.min(...times))}–${fmt(Math.max(...times))}`,
        contender === 'floor' ? '-' : `${fmt(rows / seconds / 1e3, 0)}k`,
        fmt(bytes / seconds / 1e6, 0),
        fmt(median(list.map((m) => m.cpuSeconds))),
        fmt(Math.max(...list.map((m) => m.peakMb)), 0),
        `${fmt(seconds / current)}x`,
      ]);
    }
    const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
    const line = (r: string[]) => `| ${r.map((cell, i) => cell.padStart(widths[i]!)).join(' | ')} |`;
    console.log(
      [line(table[0]!), `|${widths.map((w) => '-'.repeat(w + 1) + ':').join('|')}|`, ...table.slice(1).map(line)].join(
        '\n',
      ),
    );
    const ratio = median(measures.get('ndjson')!.map((m) => m.seconds)) / current;
    const verdict = ratio <= 1.1 ? 'within' : 'over';
    console.log(`ndjson/current: ${fmt(ratio)}x wall time (${verdict} the 10% that jsonl-source allows ndjson)`);
  } finally {
    if (args.keep) process.stderr.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

try {
  if (args.child) {
    if (!(CONTENDERS as readonly string[]).includes(args.child) || !args.file)
      throw new Error(`--child: expected one of ${CONTENDERS.join(', ')} and --file`);
    await child(args.child as Contender, args.file);
  } else {
    await main();
  }
} catch (error) {
  process.stderr.write(`bench:jsonl: ${(error as Error).message}\n`);
  process.exitCode = 1;
}
