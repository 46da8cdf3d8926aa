import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../engine/errors.ts';
import type { TrainItem } from '../../transforms/train/types.ts';

/** What the worker writes into every checkpoint's trainer_state.json that a resume needs. */
export interface CheckpointState {
  phase: string;
  phase_index: number;
  step: number;
  params: Record<string, unknown>;
}

export interface Checkpoint {
  path: string;
  /** The run root holding it: the run folder, or the staging folder an interrupted run left beside it. */
  root: string;
  state: CheckpointState;
}

const CHECKPOINT = /^checkpoint-(\d+)$/;
const STATE_FILE = 'trainer_state.json';

/**
 * Parameters a resumed run may change: they decide where and how the run reports, not what it
 * trains (the batches, the model, the schedule). Any other difference is refused.
 */
const MAY_CHANGE = new Set([
  'out_dir',
  'dry_run_out_subdir',
  'python',
  'device',
  'log_every_steps',
  'checkpoint_every_steps',
  'save_total_limit',
  'hf_token',
  'hf_token_env',
  'export_merged',
  'resume_from',
  'gradient_checkpointing',
  // How the GPU computes, not what: float rounding aside, the same steps (micro_batch_rows is not
  // here: it decides which dropout masks are drawn).
  'memory_budget_gib',
  'attention',
  'head_loss',
  'compile',
  'per_device_eval_batch_size',
  'eval_every_steps',
  'english_eval_dataset',
  'eval_max_samples',
  'english_eval_batch_size',
]);
const mayChange = (param: string) => MAY_CHANGE.has(param) || param.startsWith('wandb_');

function readState(dir: string): CheckpointState {
  const file = path.join(dir, STATE_FILE);
  let state: Partial<CheckpointState> & { format?: unknown };
  try {
    state = JSON.parse(readFileSync(file, 'utf8')) as typeof state;
  } catch (error) {
    throw new ConfigError(`resume_from: ${dir} is not a checkpoint (${(error as Error).message})`);
  }
  if (state.format !== 2 || typeof state.phase !== 'string' || typeof state.step !== 'number' || !state.params)
    throw new ConfigError(`resume_from: ${file} is not a complete checkpoint (format 2 with phase, step and params)`);
  return state as CheckpointState;
}

/** Every checkpoint under a run root: <root>/<phase>/checkpoint-N/trainer_state.json. */
function checkpointsUnder(root: string): Checkpoint[] {
  if (!existsSync(root)) return [];
  const found: Checkpoint[] = [];
  for (const phase of readdirSync(root)) {
    const phaseDir = path.join(root, phase);
    if (!statSync(phaseDir).isDirectory()) continue;
    for (const name of readdirSync(phaseDir))
      if (CHECKPOINT.test(name) && existsSync(path.join(phaseDir, name, STATE_FILE))) {
        const dir = path.join(phaseDir, name);
        found.push({ path: dir, root, state: readState(dir) });
      }
  }
  return found;
}

/**
 * The checkpoint `resume_from` names: a checkpoint folder, or `latest`, the furthest one (by phase,
 * then step) in the run folder or in a staging folder an interrupted run left beside it
 * (`.NAME.unfinished-PID`). Undefined for "" and for `latest` when there is none yet (a job's first
 * submission starts from the base model).
 */
export function findCheckpoint(resumeFrom: string, runDir: string): Checkpoint | undefined {
  if (!resumeFrom) return undefined;
  if (resumeFrom !== 'latest') {
    const dir = path.resolve(resumeFrom);
    return { path: dir, root: path.dirname(path.dirname(dir)), state: readState(dir) };
  }
  const parent = path.dirname(runDir);
  const staged = existsSync(parent)
    ? readdirSync(parent)
        .filter((name) => name.startsWith(`.${path.basename(runDir)}.unfinished-`))
        .map((name) => path.join(parent, name))
    : [];
  const all = [runDir, ...staged].flatMap(checkpointsUnder);
  const rank = (c: Checkpoint) => [c.state.phase_index, c.state.step, statSync(c.path).mtimeMs];
  all.sort((a, b) => {
    const [x, y] = [rank(a), rank(b)];
    return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
  });
  return all.at(-1);
}

/** One line naming the first setting that differs from the checkpoint's and would change what is trained. */
export function resumeProblem(checkpoint: Checkpoint, params: Readonly<Record<string, unknown>>): string | undefined {
  const saved = checkpoint.state.params;
  for (const key of [...new Set([...Object.keys(saved), ...Object.keys(params)])].sort()) {
    if (mayChange(key) || JSON.stringify(saved[key]) === JSON.stringify(params[key])) continue;
    return (
      `resume_from: ${checkpoint.path} was trained with ${key} = ${JSON.stringify(saved[key])}, ` +
      `this run sets ${JSON.stringify(params[key])}; a resumed run must keep every setting that changes ` +
      `what it trains (start a new run, or set ${key} back)`
    );
  }
  return undefined;
}

/**
 * Carries an interrupted run's phase folders (checkpoints, best models) into the new staging
 * folder as hard links, so the finished run holds them all and the worker rotates them as usual.
 */
export function adoptPhaseFolders(from: string, staging: string): void {
  const link = (src: string, dst: string) => {
    if (statSync(src).isDirectory()) {
      mkdirSync(dst, { recursive: true });
      for (const name of readdirSync(src)) link(path.join(src, name), path.join(dst, name));
    } else linkSync(src, dst);
  };
  for (const phase of readdirSync(from)) {
    const dir = path.join(from, phase);
    if (statSync(dir).isDirectory() && readdirSync(dir).some((name) => CHECKPOINT.test(name) || name === 'best_model'))
      link(dir, path.join(staging, phase));
  }
}

/**
 * Drops what the checkpoint already holds from the trainer's stream: the phases before its own,
 * and in its phase every batch of the steps it has done plus the evals due before them (the evals
 * of its own step are kept: the worker writes a checkpoint before its step's evals run).
 */
export class ResumeFilter {
  private phaseIndex = -1;
  private lastStep = 0;

  constructor(private readonly state: Pick<CheckpointState, 'phase' | 'phase_index' | 'step'>) {}

  /** The item to send, undefined to drop it; a resumed phase's plan gains its resume_step. */
  pass(item: TrainItem): TrainItem | undefined {
    const { phase_index: at, step } = this.state;
    if (item.kind === 'phase') {
      this.phaseIndex++;
      this.lastStep = 0;
      if (this.phaseIndex < at) return undefined;
      if (this.phaseIndex === at && item.name !== this.state.phase)
        throw new ConfigError(
          `resume_from: the checkpoint is of phase ${this.state.phase}, but this run's phase ${at + 1} is ${item.name}`,
        );
      return this.phaseIndex === at ? { ...item, resumeStep: step } : item;
    }
    if (this.phaseIndex !== at) return this.phaseIndex < at ? undefined : item;
    if (item.kind === 'batch') {
      this.lastStep = item.step;
      return item.step <= step ? undefined : item;
    }
    return this.lastStep < step ? undefined : item;
  }
}
