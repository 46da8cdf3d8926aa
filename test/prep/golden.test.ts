import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { GOLDEN_FILES, goldenPath, produceGolden } from '../golden/prep-golden.ts';

// Any internal batch size must give the same bytes: every random choice is keyed by record, not by arrival.
for (const batchSize of [1, 7, 4096]) {
  test(
    `prep.yaml on the test fixture matches the goldens byte for byte ` +
      `(batch_size ${batchSize}; npm run golden:update rewrites them)`,
    async (t) => {
      const outDir = await produceGolden(batchSize);
      t.after(() => rmSync(outDir, { recursive: true, force: true }));
      for (const name of GOLDEN_FILES) {
        const actual = readFileSync(path.join(outDir, name));
        assert.ok(actual.equals(readFileSync(goldenPath(name))), `${name} differs from test/golden/prep/${name}`);
      }
    },
  );
}
