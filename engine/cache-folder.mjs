/**
 * Where the tool keeps what it makes for itself (the CLI's build, worker-thread scripts, kept input
 * digests): node_modules/.cache/animind, so the code's package imports resolve as they do from the
 * sources. Where that cannot be
 * written (a read-only install), a folder of the temporary folder, one per install, with a
 * `node_modules` link to the install's packages so they resolve from there too. Plain
 * JavaScript, because bin/animind.mjs uses it before anything could load TypeScript.
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_MODULES = fileURLToPath(new URL('../node_modules', import.meta.url));
const FOLDERS = [
  path.join(PROJECT_MODULES, '.cache/animind'),
  path.join(os.tmpdir(), `animind-${createHash('sha256').update(PROJECT_MODULES).digest('hex').slice(0, 12)}`),
];

/** The first of `folders` that can be written, linked to `packages` if it is outside them; undefined if none can. */
export function cacheFolder(folders = FOLDERS, packages = PROJECT_MODULES) {
  for (const folder of folders) {
    try {
      mkdirSync(folder, { recursive: true });
      accessSync(folder, constants.W_OK);
      if (!folder.startsWith(packages + path.sep)) linkPackages(folder, packages);
      return folder;
    } catch {
      // A read-only install: try the next folder.
    }
  }
  return undefined;
}

/** Writes `file` aside and renames it into place, so a run reading it meanwhile never sees half of it. */
export function writeAside(file, data) {
  const partial = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(partial, data);
    renameSync(partial, file);
  } catch (error) {
    rmSync(partial, { force: true });
    throw error;
  }
}

function linkPackages(folder, packages) {
  const link = path.join(folder, 'node_modules');
  try {
    symlinkSync(packages, link, 'dir');
  } catch (error) {
    // Linked already, by an earlier run or one running beside this one.
    if (!existsSync(link)) throw error;
  }
}
