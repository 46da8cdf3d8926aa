import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { DigestCache, fileStamp } from '../../sinks/digest-cache.ts';
import { fileDigest, fileDigests } from '../../sinks/file-digest.ts';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function files() {
  const dir = mkdtempSync(path.join(tmpdir(), 'animind-digests-'));
  const a = path.join(dir, 'a.sqlite');
  const b = path.join(dir, 'b.jsonl');
  writeFileSync(a, 'database bytes');
  writeFileSync(b, '{"anime_id":1}\n');
  return { dir, a, b, cache: new DigestCache(path.join(dir, 'file-digests.json')) };
}

test('digests are hashed on a thread, in the order of the files', async () => {
  const { a, b } = files();
  assert.deepEqual(await fileDigests([a, b]), [
    { bytes: 14, sha256: sha256(a) },
    { bytes: 15, sha256: sha256(b) },
  ]);
});

test('a file unchanged since its digest was kept is not read again', async () => {
  const { a, b, cache } = files();
  await fileDigests([a, b], undefined, cache);
  // A digest kept for the file's exact stamp is taken as it is: a made-up one proves no hashing happened.
  cache.set([{ file: a, stamp: fileStamp(a).stamp, digest: { bytes: 14, sha256: 'kept' } }]);
  assert.deepEqual(await fileDigests([a, b], undefined, cache), [
    { bytes: 14, sha256: 'kept' },
    { bytes: 15, sha256: sha256(b) },
  ]);
});

test('a file written again, even to the same size, is hashed again', async () => {
  const { a, cache } = files();
  cache.set([{ file: a, stamp: fileStamp(a).stamp, digest: { bytes: 14, sha256: 'kept' } }]);
  writeFileSync(a, 'DATABASE BYTES');
  assert.deepEqual(await fileDigest(a, undefined, cache), { bytes: 14, sha256: sha256(a) });
});

test('a file changed in the last two seconds is hashed, its digest not kept (racily clean, as git says)', async (t) => {
  const { a, b, cache } = files();
  // The clock is set instead of waited on: "now" is 2.1 s after a's last change, and b's
  // modification time 0.5 s before it. (b's change time, which cannot be set back, is the real
  // time of the write: before "now", or after it if the machine stalled, which only makes b younger.)
  const aChanged = Math.max(statSync(a).ctimeMs, statSync(a).mtimeMs);
  const now = Math.ceil(aChanged) + 2100;
  t.mock.method(Date, 'now', () => now);
  writeFileSync(b, '{"anime_id":2}\n');
  utimesSync(b, new Date(now - 500), new Date(now - 500));
  assert.deepEqual([fileStamp(a).settled, fileStamp(b).settled], [true, false]);
  await fileDigests([a, b], undefined, cache);
  assert.deepEqual(cache.get(a, fileStamp(a).stamp), { bytes: 14, sha256: sha256(a) });
  assert.equal(cache.get(b, fileStamp(b).stamp), undefined);
});

test('a cache that cannot be written or read only means hashing again', async () => {
  const { dir, a } = files();
  const blocked = path.join(dir, 'a.sqlite', 'file-digests.json');
  const cache = new DigestCache(blocked);
  assert.deepEqual(await fileDigest(a, undefined, cache), { bytes: 14, sha256: sha256(a) });
  const corrupt = path.join(dir, 'corrupt.json');
  writeFileSync(corrupt, '{not json');
  assert.deepEqual(await fileDigest(a, undefined, new DigestCache(corrupt)), { bytes: 14, sha256: sha256(a) });
});
