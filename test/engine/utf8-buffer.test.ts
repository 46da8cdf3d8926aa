import assert from 'node:assert/strict';
import { test } from 'node:test';
import { jsonString } from '../../engine/encoded-batch.ts';
import { Utf8Buffer } from '../../engine/utf8-buffer.ts';

const written = (write: (b: Utf8Buffer) => void) => {
  const buffer = new Utf8Buffer(4);
  write(buffer);
  return buffer.bytes.toString('utf8', 0, buffer.position);
};

test('jsonString gives exactly what JSON.stringify gives, escaping only where it must', () => {
  const texts = [
    'plain',
    '',
    'a "quote"',
    'back\\slash',
    'tab\tand\nnewline',
    'ctl \u0000 \u001f',
    'é 日本 😀',
    'lone \ud800 high',
    'lone \udfff low',
    '\u2028\u2029\u007f',
  ];
  for (const text of texts)
    assert.equal(
      written((b) => b.text(jsonString(text))),
      JSON.stringify(text),
      JSON.stringify(text),
    );
});

test('the buffer grows as text, bytes and copies arrive', () => {
  const long = 'x'.repeat(10000);
  assert.equal(
    written((b) => {
      b.ascii('{"a":');
      b.text(jsonString(long));
      b.byte(0x2c);
      b.copy(Buffer.from('"ü":1}'));
    }),
    `{"a":"${long}","ü":1}`,
  );
});
