import cliProgress from 'cli-progress';

export type LogFormat = 'text' | 'json';

export interface CounterOptions {
  /** Known total, for a bar with ETA; unknown totals show a running count and rate. */
  total?: number;
  /** What is counted (rows, users, steps). */
  unit?: string;
  /** Off a terminal, log a line each time this many more units are done. */
  logEvery?: number;
}

export interface Counter {
  add(n: number, fields?: Record<string, string | number>): void;
  setTotal(total: number): void;
  done(): void;
}

/** What a node sees: log lines and counters, all on stderr, never on stdout (which carries data). */
export interface Progress {
  log(message: string): void;
  warn(message: string): void;
  counter(label: string, options?: CounterOptions): Counter;
}

export interface Reporter {
  forNode(node: string): Progress;
  stage(index: number, total: number, name: string): void;
  stop(): void;
}

export interface ReporterOptions {
  mode: 'tty' | 'lines' | 'quiet';
  format: LogFormat;
  stream?: NodeJS.WriteStream;
  /** Seconds between periodic log lines for counters without `logEvery`. */
  intervalSeconds?: number;
}

const rate = (n: number, startedAt: number) => {
  const seconds = (Date.now() - startedAt) / 1000;
  return seconds > 0 ? Math.round(n / seconds) : 0;
};

/** Chooses bars on a terminal, plain lines elsewhere, or silence with --quiet. */
export function createReporter(options: ReporterOptions): Reporter {
  const out = options.stream ?? process.stderr;
  if (options.mode === 'quiet') return quietReporter;
  if (options.mode === 'tty') return new BarReporter(out);
  return new LineReporter(out, options.format, options.intervalSeconds ?? 10);
}

const silentCounter: Counter = { add() {}, setTotal() {}, done() {} };
const quietReporter: Reporter = {
  forNode: () => ({ log() {}, warn() {}, counter: () => silentCounter }),
  stage() {},
  stop() {},
};

class LineReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly format: LogFormat,
    private readonly intervalSeconds: number,
  ) {}

  private write(level: string, message: string, fields: Record<string, unknown> = {}) {
    if (this.format === 'json')
      this.out.write(JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }) + '\n');
    else this.out.write(`${level === 'warn' ? 'warning: ' : ''}${message}\n`);
  }

  stage(index: number, total: number, name: string) {
    this.write('info', `${index}/${total} ${name}`, { stage: index, stages: total, name });
  }

  forNode(node: string): Progress {
    return {
      log: (message) => this.write('info', `[${node}] ${message}`, { node }),
      warn: (message) => this.write('warn', `[${node}] ${message}`, { node }),
      counter: (label, options = {}) => {
        const startedAt = Date.now();
        let done = 0;
        let total = options.total;
        let nextLog = options.logEvery ?? Infinity;
        let lastTime = startedAt;
        const unit = options.unit ?? 'rows';
        const report = (final: boolean) => {
          const text =
            `[${node}] ${label}: ${done.toLocaleString('en-US')}${total ? `/${total.toLocaleString('en-US')}` : ''} ` +
            `${unit}, ${rate(done, startedAt).toLocaleString('en-US')} ${unit}/s${final ? ' (done)' : ''}`;
          this.write('info', text, { node, label, done, total, unit, final });
        };
        return {
          add: (n) => {
            done += n;
            const now = Date.now();
            if (done >= nextLog) {
              while (nextLog <= done) nextLog += options.logEvery!;
              lastTime = now;
              report(false);
            } else if (options.logEvery === undefined && now - lastTime >= this.intervalSeconds * 1000) {
              lastTime = now;
              report(false);
            }
          },
          setTotal: (t) => {
            total = t;
          },
          done: () => report(true),
        };
      },
    };
  }

  stop() {}
}

class BarReporter implements Reporter {
  private readonly bars: cliProgress.MultiBar;
  private stageBar: cliProgress.SingleBar | undefined;

  constructor(out: NodeJS.WriteStream) {
    this.bars = new cliProgress.MultiBar(
      {
        stream: out,
        clearOnComplete: false,
        hideCursor: true,
        fps: 10,
        format: ' {label} |{bar}| {value}/{total} {unit} | {rate}/s | ETA {eta_formatted}',
        barsize: 24,
        forceRedraw: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  stage(index: number, total: number, name: string) {
    if (!this.stageBar)
      this.stageBar = this.bars.create(total, 0, { name }, { format: ' {value}/{total} {name} |{bar}|', barsize: 16 });
    this.stageBar.setTotal(total);
    this.stageBar.update(index, { name });
  }

  forNode(node: string): Progress {
    return {
      log: (message) => this.bars.log(`[${node}] ${message}\n`),
      warn: (message) => this.bars.log(`warning: [${node}] ${message}\n`),
      counter: (label, options = {}) => {
        const startedAt = Date.now();
        const unit = options.unit ?? 'rows';
        let done = 0;
        const known = options.total !== undefined;
        const bar = this.bars.create(
          options.total ?? 0,
          0,
          { label: `${node} ${label}`, unit, rate: 0 },
          known ? {} : { format: ' {label} | {value} {unit} | {rate}/s' },
        );
        return {
          add: (n) => {
            done += n;
            bar.update(done, { rate: rate(done, startedAt).toLocaleString('en-US') });
          },
          setTotal: (t) => bar.setTotal(t),
          done: () => {
            bar.update(done, { rate: rate(done, startedAt).toLocaleString('en-US') });
            bar.stop();
          },
        };
      },
    };
  }

  stop() {
    this.bars.stop();
  }
}
