/**
 * Rewrites the prep goldens on purpose (`npm run golden:update`) after an intended change to
 * the prep output; review the diff before committing it.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { GOLDEN_DIR, GOLDEN_FILES, goldenPath, produceGolden } from './prep-golden.ts';

const outDir = await produceGolden(2048);
mkdirSync(GOLDEN_DIR, { recursive: true });
for (const name of GOLDEN_FILES) {
  const fresh = path.join(outDir, name);
  const target = goldenPath(name);
  const changed = !existsSync(target) || !readFileSync(target).equals(readFileSync(fresh));
  copyFileSync(fresh, target);
  process.stderr.write(`${changed ? 'updated' : 'unchanged'} ${path.relative(process.cwd(), target)}\n`);
}
rmSync(outDir, { recursive: true, force: true });
