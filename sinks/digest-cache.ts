import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { cacheFolder, writeAside } from '../engine/cache-folder.mjs';

/** Digests kept, most recent last: enough for every input of many projects, small enough to rewrite whole. */
const MAX_ENTRIES = 256;

/** A file's size and SHA-256. */
export interface FileDigest {
  bytes: number;
  sha256: string;
}

interface Entry extends FileDigest {
  stamp: string;
}

/**
 * A file written this recently is not kept: on a filesystem with coarse timestamps, a second
 * write of the same size within the same tick would leave its stamp as it was (git calls such
 * entries racily clean and hashes them again).
 */
const SETTLED_MS = 2000;

/**
 * What changes whenever a file's content can: device, inode, size, and modification and change
 * times in nanoseconds (a change time cannot be set back by hand), as git's index and DVC key
 * theirs. Taken before a file is hashed, so a file written meanwhile is hashed again next time.
 * `settled` is false for a file changed in the last two seconds, whose digest is not kept.
 */
export function fileStamp(file: string): { stamp: string; settled: boolean } {
  const s = statSync(file, { bigint: true });
  const changedMs = Number((s.ctimeNs > s.mtimeNs ? s.ctimeNs : s.mtimeNs) / 1_000_000n);
  return {
    stamp: `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`,
    settled: Date.now() - changedMs >= SETTLED_MS,
  };
}

/**
 * Input files' digests kept between runs (`file-digests.json` in the cache folder), so a run on an
 * unchanged database does not hash it again: at real scale ~8 GB, ~5 s of a core on every prep
 * run and every `animind run` up-to-date check. Best effort: a cache that cannot be read or
 * written only means hashing again.
 */
export class DigestCache {
  /** The kept digests as read for lookups: one read serves every file a run asks about. */
  private kept?: Record<string, Entry>;

  constructor(private readonly file: string | undefined = digestCacheFile()) {}

  /** The digest of `file` as it is now, if one was kept for exactly this stamp. */
  get(file: string, stamp: string): FileDigest | undefined {
    this.kept ??= this.read();
    const entry = this.kept[path.resolve(file)];
    return entry?.stamp === stamp ? { bytes: entry.bytes, sha256: entry.sha256 } : undefined;
  }

  set(found: { file: string; stamp: string; digest: FileDigest }[]): void {
    if (!this.file || !found.length) return;
    // Read again: another run may have kept digests since.
    const entries = this.read();
    for (const { file, stamp, digest } of found) {
      const key = path.resolve(file);
      delete entries[key];
      entries[key] = { stamp, ...digest };
    }
    const kept = Object.entries(entries).slice(-MAX_ENTRIES);
    this.kept = Object.fromEntries(kept);
    try {
      writeAside(this.file, JSON.stringify(this.kept));
    } catch {
      // Not kept this time; the next run hashes again.
    }
  }

  private read(): Record<string, Entry> {
    if (!this.file) return {};
    try {
      const parsed: unknown = JSON.parse(readFileSync(this.file, 'utf8'));
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, Entry>) : {};
    } catch {
      return {};
    }
  }
}

/** Where digests are kept: the cache folder's `file-digests.json`; undefined where no cache folder can be written. */
export function digestCacheFile(): string | undefined {
  const folder = cacheFolder();
  return folder && path.join(folder, 'file-digests.json');
}
