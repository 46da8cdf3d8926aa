import type { WorkerEvent, WorkerProcess } from './worker-process.ts';

/**
 * This machine's trainer workers, one per rank, driven together: frames to one rank or all, and
 * the first to fail fails the group at once (its line names the rank), so a rank that dies never
 * leaves the others waiting at an all-reduce: closing the run stops them all.
 */
export class WorkerGroup {
  constructor(private readonly workers: ReadonlyMap<number, WorkerProcess>) {}

  get ranks(): number[] {
    return [...this.workers.keys()];
  }

  private worker(rank: number): WorkerProcess {
    const worker = this.workers.get(rank);
    if (!worker) throw new Error(`no worker of rank ${rank} on this machine`);
    return worker;
  }

  /** The event from every worker, or the first failure. */
  waitForAll(kind: string): Promise<WorkerEvent[]> {
    return this.whileRunning(Promise.all([...this.workers.values()].map((w) => w.waitFor(kind))));
  }

  /** Settles with `work`, or fails as soon as any worker dies. */
  whileRunning<T>(work: Promise<T>): Promise<T> {
    return [...this.workers.values()].reduce((settled, w) => w.whileRunning(settled), work);
  }

  sendTo(rank: number, frame: Buffer): Promise<void> {
    return this.whileRunning(this.worker(rank).send(frame));
  }

  async sendAll(frame: Buffer): Promise<void> {
    await this.whileRunning(Promise.all([...this.workers.values()].map((w) => w.send(frame))));
  }

  /** After END: resolves when every worker has finished cleanly. */
  async finish(): Promise<void> {
    await this.whileRunning(Promise.all([...this.workers.values()].map((w) => w.finish())));
  }

  preempt(): void {
    for (const worker of this.workers.values()) worker.preempt();
  }

  async stop(graceMs: number): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.stop(graceMs)));
  }
}
