/**
 * A run's hold on a folder it writes outputs into, and the clearing of what killed runs left there.
 *
 * Outputs are written to `.NAME.tmp-PID` and renamed on success (runtime.ts). A run stopped with no
 * chance to clean up (SIGKILL, the OOM killer, a crash of Node itself, a power cut) leaves those
 * files, and nothing else would ever remove them (162 MB seen). So before its first output in a
 * folder a run takes the folder's lock, `.animind.lock`, then removes every temporary file whose
 * process no longer runs. The lock holds the run's pid; it is created with the 'wx' flag, so of
 * two runs only one can create it, and the other is refused while the holder runs. A lock whose
 * pid no longer runs was left by a killed run and is taken over.
 */
import {
  closeSync,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { DataError } from './errors.ts';

export const LOCK_FILE = '.animind.lock';

/** `.NAME.tmp-PID`, as the runtime names an output until the run succeeds. */
const TEMP_FILE = /^\..+\.tmp-([1-9]\d*)$/;

/**
 * An empty lock younger than this belongs to a run between creating it and writing its pid; an
 * older one to a run killed in between, and is taken over.
 */
const STARTING_MS = 10_000;

/** Whether a process with this pid runs: signal 0 checks without sending (EPERM: it runs, as another user). */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The locks this process holds, so that one it holds is never mistaken for one an earlier process left. */
const held = new Set<string>();

export interface FolderLock {
  /** The lock file. */
  readonly file: string;
  /** One line saying what killed runs had left in the folder and was removed, if anything was. */
  readonly notice: string | undefined;
  /** Removes the lock (if it is still this process's); calling it again does nothing. */
  release(): void;
}

/**
 * Takes `folder`'s lock for this process and removes the temporary files of processes that no
 * longer run. Throws a DataError (exit 1: the folder is busy, not misconfigured) naming the
 * holder's pid and the lock file when another live run holds it.
 */
export function lockFolder(folder: string): FolderLock {
  const file = path.join(folder, LOCK_FILE);
  const stalePid = acquire(file);
  held.add(file);
  releaseOnExit();
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.delete(file);
    unlinkIfOurs(file);
  };
  try {
    return { file, notice: describeRemoved(folder, removeStaleTemporaries(folder), stalePid), release };
  } catch (error) {
    release();
    throw error;
  }
}

/** What is in a lock file: its holder's pid (null when empty or unreadable), its inode and its age. */
interface LockState {
  pid: number | null;
  ino: number;
  ageMs: number;
}

/**
 * Creates the lock file. Returns the pid of the dead run whose lock it took over (null: a lock with
 * no pid in it), or undefined when there was none to take over.
 */
function acquire(file: string): number | null | undefined {
  let tookOver: number | null | undefined;
  // Each turn either creates the lock, refuses, or removes a stale lock; a few cover runs racing for one.
  for (let attempt = 0; attempt < 5; attempt++) {
    if (create(file)) return tookOver;
    const state = readLock(file);
    if (!state) continue; // its holder released it meanwhile
    const holder = liveHolder(file, state);
    if (holder !== undefined) throw busy(file, holder);
    if (setAside(file, state)) tookOver = state.pid;
  }
  throw new DataError(`could not take the lock ${file}: other runs keep taking it; try again`);
}

/** Creates the lock with this process's pid; false when a lock is there already. */
function create(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, `${process.pid}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readLock(file: string): LockState | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    const text = readFileSync(fd, 'utf8').trim();
    const pid = /^[1-9]\d*$/.test(text) ? Number(text) : null;
    return { pid, ino: stat.ino, ageMs: Date.now() - stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/**
 * The pid of the live run that holds the lock (null: one that is writing its pid right now), or
 * undefined when the lock is stale. A lock with this process's pid that this process did not take
 * was left by an earlier process with the same pid (containers start their processes at the same
 * pids).
 */
function liveHolder(file: string, state: LockState): number | null | undefined {
  if (state.pid === null) return state.ageMs < STARTING_MS ? null : undefined;
  if (state.pid === process.pid) return held.has(file) ? state.pid : undefined;
  return isRunning(state.pid) ? state.pid : undefined;
}

/**
 * Moves a stale lock out of the way, checking it is the one judged stale: another run may have
 * taken it over between the look and the move, and then its new lock is put back. The name
 * aside is a temporary file of this process, removed on a later run if this one dies here.
 */
function setAside(file: string, stale: LockState): boolean {
  const aside = `${file}.tmp-${process.pid}`;
  try {
    renameSync(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  if (statSync(aside).ino !== stale.ino) {
    renameSync(aside, file);
    return false;
  }
  unlinkSync(aside);
  return true;
}

function busy(file: string, pid: number | null): DataError {
  const folder = path.dirname(file);
  const holder = pid === null ? 'a run that is starting' : `pid ${pid}`;
  const unless = pid === null ? '' : ` (delete the lock file only if pid ${pid} is not an animind run)`;
  return new DataError(
    `${folder} is in use by another animind run (${holder}, lock file ${file}): ` +
      `wait for it to finish or write to another folder${unless}`,
  );
}

interface Removed {
  name: string;
  pid: number;
  bytes: number;
}

/** Removes the `.NAME.tmp-PID` files (not folders) of processes that no longer run. */
function removeStaleTemporaries(folder: string): Removed[] {
  const removed: Removed[] = [];
  for (const name of readdirSync(folder)) {
    const match = TEMP_FILE.exec(name);
    if (!match) continue;
    const pid = Number(match[1]);
    // This process's own are the ones it is writing, or about to (a test may place one first).
    if (pid === process.pid || isRunning(pid)) continue;
    const file = path.join(folder, name);
    try {
      const stat = lstatSync(file);
      if (stat.isDirectory()) continue;
      unlinkSync(file);
      removed.push({ name, pid, bytes: stat.size });
    } catch {
      // Gone meanwhile, or not ours to remove: it is left as it is.
    }
  }
  return removed;
}

const megabytes = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

function describeRemoved(folder: string, removed: Removed[], stalePid: number | null | undefined): string | undefined {
  if (!removed.length && stalePid === undefined) return undefined;
  const pids = new Set(removed.map((r) => r.pid));
  if (stalePid) pids.add(stalePid);
  const parts: string[] = [];
  if (removed.length) {
    const bytes = removed.reduce((sum, r) => sum + r.bytes, 0);
    const names = removed.map((r) => r.name).sort();
    const listed = names.length > 3 ? `${names.slice(0, 3).join(', ')}, …` : names.join(', ');
    parts.push(`${removed.length} temporary file${removed.length === 1 ? '' : 's'} (${listed}; ${megabytes(bytes)})`);
  }
  if (stalePid !== undefined) parts.push(`the lock ${LOCK_FILE}`);
  const list = [...pids];
  const who =
    list.length > 1
      ? `runs that no longer run (pids ${list.join(', ')})`
      : `a run that no longer runs${list.length ? ` (pid ${list[0]})` : ''}`;
  return `${folder}: removed ${parts.join(' and ')} left by ${who}`;
}

/** Removes the lock if it still holds this process's pid (a run that wrongly took it over keeps its own). */
function unlinkIfOurs(file: string): void {
  try {
    if (readLock(file)?.pid === process.pid) unlinkSync(file);
  } catch {
    // Already gone, or the folder went: nothing is held any more.
  }
}

let exitHook = false;

/** A process that exits mid-run (process.exit on a closed stdout, say) still removes its locks. */
function releaseOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const file of held) unlinkIfOurs(file);
  });
}
