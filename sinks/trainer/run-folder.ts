import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../../engine/errors.ts';

/**
 * What a finished run holds besides its phase folders (trainer/PROTOCOL.md, "Outputs"). merged/ and
 * wandb/ are optional: a re-run without them must not leave the previous run's beside the new model.
 */
export const RUN_ARTIFACTS = [
  'final_model',
  'tokenizer',
  'train_run_summary.json',
  'train_config_snapshot.json',
  'merged',
  'wandb',
];

/** A checkpoint folder inside a phase folder: what an unfinished run keeps for a future resume. */
const CHECKPOINT = /^(checkpoint-\d+|best_model)$/;
/** A directory or file the worker was still writing when it stopped (atomic.py names them so). */
const WORKER_TMP = /\.tmp-\d+$/;
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

const isDir = (p: string) => statSync(p, { throwIfNoEntry: false })?.isDirectory() ?? false;

/** The phase folders a finished run's summary lists: they belong to that run and go with it. */
function summaryPhases(dir: string): string[] {
  try {
    const summary = JSON.parse(readFileSync(path.join(dir, 'train_run_summary.json'), 'utf8')) as {
      phases?: { name?: unknown }[];
    };
    return (summary.phases ?? []).map((p) => String(p.name)).filter((name) => PLAIN_NAME.test(name));
  } catch {
    return [];
  }
}

/**
 * A run folder that holds a finished run or nothing new. The worker writes into a staging folder
 * beside it (`.NAME.unfinished-PID`); only when the run has finished does `publish` rename the
 * staged artifacts into the run folder, replacing the previous run's (synchronous renames on one
 * file system: a Ctrl-C cannot land between them). A run that fails or is interrupted leaves the run
 * folder as it was: `discard` removes the staging folder, or, if it holds checkpoints, keeps it
 * under its name so they can serve a future resume (the one documented exception).
 */
export class RunFolder {
  readonly dir: string;
  readonly staging: string;
  private createdRoot: string | undefined;
  private done = false;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.staging = path.join(path.dirname(this.dir), `.${path.basename(this.dir)}.unfinished-${process.pid}`);
  }

  /** Makes the empty staging folder, remembering which parent folders did not exist before. */
  create(): void {
    rmSync(this.staging, { recursive: true, force: true });
    this.createdRoot = mkdirSync(this.staging, { recursive: true });
  }

  /** Renames the staged run into place; the previous run's artifacts are removed only once it is there. */
  publish(): void {
    const staged = readdirSync(this.staging);
    const previous = [...new Set([...RUN_ARTIFACTS, ...summaryPhases(this.dir), ...staged])].filter((name) =>
      existsSync(path.join(this.dir, name)),
    );
    const replaced = path.join(path.dirname(this.dir), `.${path.basename(this.dir)}.replaced-${process.pid}`);
    const moved: [string, string][] = [];
    const move = (from: string, to: string) => {
      renameSync(from, to);
      moved.push([from, to]);
    };
    try {
      mkdirSync(this.dir, { recursive: true });
      mkdirSync(replaced, { recursive: true });
      for (const name of previous) move(path.join(this.dir, name), path.join(replaced, name));
      for (const name of staged) move(path.join(this.staging, name), path.join(this.dir, name));
    } catch (error) {
      for (const [from, to] of moved.reverse()) renameSync(to, from);
      rmSync(replaced, { recursive: true, force: true });
      this.done = true; // a finished run: discard must not remove it
      throw new DataError(
        `cannot publish the trained run into ${this.dir} (${(error as Error).message}); it is kept in ${this.staging}`,
      );
    }
    this.done = true;
    rmSync(replaced, { recursive: true, force: true });
    rmSync(this.staging, { recursive: true, force: true });
  }

  /**
   * After a failure or an interruption (the worker already stopped): removes everything this run
   * made, except a staging folder with checkpoints, which stays where the checkpoint lines said.
   */
  discard(): void {
    if (this.done) return;
    this.done = true;
    if (this.keepsCheckpoints()) return;
    rmSync(this.staging, { recursive: true, force: true });
    if (!this.createdRoot) return;
    // The folders mkdir made for the staging folder, innermost first, while they are empty.
    for (let dir = path.dirname(this.staging); dir.startsWith(this.createdRoot); dir = path.dirname(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        return;
      }
    }
  }

  /** True when a phase folder holds a complete checkpoint; what the worker was still writing is removed. */
  private keepsCheckpoints(): boolean {
    if (!isDir(this.staging)) return false;
    let kept = false;
    const sweep = (dir: string) =>
      readdirSync(dir).filter((name) => {
        if (!WORKER_TMP.test(name)) return true;
        rmSync(path.join(dir, name), { recursive: true, force: true });
        return false;
      });
    for (const entry of sweep(this.staging)) {
      const dir = path.join(this.staging, entry);
      if (isDir(dir)) kept = sweep(dir).some((name) => CHECKPOINT.test(name)) || kept;
    }
    return kept;
  }
}
