import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { DataError, PreemptedError } from '../../engine/errors.ts';

/** The worker's exit code after a graceful stop with a checkpoint (trainer/PROTOCOL.md). */
export const PREEMPTED_EXIT = 75;

export interface WorkerEvent {
  event: string;
  [field: string]: unknown;
}

export interface WorkerHandlers {
  onEvent(event: WorkerEvent): void;
  /** A line the worker wrote to stdout or stderr. */
  onLog(line: string): void;
}

/**
 * The Python worker as a child process: frames go to its fd 3, JSON-line events come from its
 * fd 4. However the worker ends, `closed` resolves once every event it wrote has been read, and
 * an unfinished run turns into one DataError carrying its last error event or stderr line.
 */
export class WorkerProcess {
  private readonly child: ChildProcess;
  private readonly frames: Writable;
  private lastError: string | undefined;
  private lastStderr: string | undefined;
  private finishedRun = false;
  private exited = false;
  private failure: DataError | PreemptedError | undefined;
  private preempted: WorkerEvent | undefined;
  private readonly waiters = new Map<string, ((event: WorkerEvent) => void)[]>();
  /** Resolves when the process has exited and its pipes are drained. */
  readonly closed: Promise<void>;
  /** Rejects with the failure once the worker has ended without finishing; never resolves. */
  private readonly failed: Promise<never>;

  constructor(
    python: string,
    cwd: string,
    env: NodeJS.ProcessEnv,
    private readonly handlers: WorkerHandlers,
    secrets: readonly string[] = [],
    /** How failures name it: "trainer worker", or "trainer rank 3" among several. */
    private readonly label = 'trainer worker',
  ) {
    // Its own process group: Ctrl-C on a terminal reaches only the supervisor, which then stops
    // the worker in order; if the supervisor dies, the worker reads end-of-input on fd 3 and exits.
    this.child = spawn(python, ['-m', 'animind_trainer.worker'], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    this.frames = this.child.stdio[3] as Writable;
    // A write after the worker died fails with EPIPE or ECONNRESET; the exit handler reports why it died.
    this.frames.on('error', () => {});
    // Every line passes through here, so no log, event or error message can carry a secret.
    const scrub = (line: string) => secrets.reduce((text, secret) => text.replaceAll(secret, '<redacted>'), line);
    lines(this.child.stdout!, (line) => handlers.onLog(scrub(line)));
    lines(this.child.stderr!, (line) => {
      const clean = scrub(line);
      if (clean.trim()) this.lastStderr = clean.trim();
      handlers.onLog(clean);
    });
    lines(this.child.stdio[4] as Readable, (line) => this.dispatch(scrub(line)));
    let fail!: (error: DataError | PreemptedError) => void;
    this.failed = new Promise<never>((_resolve, reject) => (fail = reject));
    this.failed.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.child.on('error', (error) => {
        this.lastError ??= `cannot start ${python}: ${error.message}`;
      });
      this.child.on('close', (code, signal) => {
        this.exited = true;
        if (!(code === 0 && this.finishedRun)) {
          const how = signal
            ? `was killed by ${signal}`
            : code === 0
              ? 'exited before finishing'
              : `exited with code ${code}`;
          const why = this.lastError ?? this.lastStderr;
          this.failure =
            code === PREEMPTED_EXIT
              ? new PreemptedError(preemptedLine(this.preempted))
              : new DataError(`${this.label} ${how}${why ? `: ${why}` : ''}`);
          fail(this.failure);
        }
        resolve();
      });
    });
  }

  private dispatch(line: string): void {
    if (!line.trim()) return;
    let event: WorkerEvent;
    try {
      event = JSON.parse(line) as WorkerEvent;
    } catch {
      this.handlers.onLog(line);
      return;
    }
    if (event.event === 'error') this.lastError = String(event.message);
    if (event.event === 'done') this.finishedRun = true;
    if (event.event === 'preempted') this.preempted = event;
    this.handlers.onEvent(event);
    for (const resolve of this.waiters.get(event.event) ?? []) resolve(event);
    this.waiters.delete(event.event);
  }

  /** The next event of this kind, or the worker's failure if it ends first. */
  waitFor(kind: string): Promise<WorkerEvent> {
    const event = new Promise<WorkerEvent>((resolve) =>
      this.waiters.set(kind, [...(this.waiters.get(kind) ?? []), resolve]),
    );
    return Promise.race([event, this.failed]);
  }

  /** Settles with `work`, or fails as soon as the worker dies: a long wait on the upstream nodes notices it at once. */
  whileRunning<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.failed]);
  }

  /** Writes one frame; resolves once the pipe can take more, so we stay a frame or so ahead of the worker. */
  async send(frame: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.exited) throw new DataError(`${this.label} is not running`);
    // Not events.once: it would reject with the socket's ECONNRESET instead of the worker's own reason.
    if (!this.frames.write(frame))
      await Promise.race([new Promise((resolve) => this.frames.once('drain', resolve)), this.failed]);
  }

  /** After the END frame: resolves when the worker has written its outputs and exited cleanly. */
  async finish(): Promise<void> {
    this.frames.end();
    await this.closed;
    if (this.failure) throw this.failure;
  }

  /** A graceful stop: the worker finishes its optimizer step, writes a checkpoint and exits 75. */
  preempt(): void {
    if (!this.exited && this.child.exitCode === null) this.child.kill('SIGUSR1');
  }

  /**
   * Sends SIGTERM, closes fd 3 and, after `graceMs`, sends SIGKILL; resolves once the process is
   * gone. The signal goes first: a worker that reads the end of its input already knows it was
   * stopped, rather than taking the closed pipe for a supervisor that broke off.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.exited || this.child.exitCode !== null || this.child.pid === undefined) return;
    this.child.kill('SIGTERM');
    this.frames.destroy();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.closed;
    clearTimeout(timer);
  }
}

function preemptedLine(event: WorkerEvent | undefined): string {
  if (!event?.path) return 'preempted before the first optimizer step: no checkpoint to resume from';
  return (
    `preempted: checkpoint ${String(event.path)} (${String(event.phase)} step ${String(event.step)}); ` +
    'run again with resume_from = "latest" to continue'
  );
}

function lines(stream: Readable, onLine: (line: string) => void): void {
  // A pipe reset by a dying worker is reported through its exit, not as a stream error.
  stream.on('error', () => {});
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', onLine);
}
