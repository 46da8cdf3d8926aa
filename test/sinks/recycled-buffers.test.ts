import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MessageChannel } from 'node:worker_threads';
import { once } from 'node:events';
import { RecycledBuffers } from '../../sinks/recycled-buffers.ts';

test('a recycled buffer carries the next batch: same bytes, no new memory while it is big enough', () => {
  const pool = new RecycledBuffers();
  const first = pool.copy(Buffer.from('{"a":1}\n{"a":2}\n'));
  assert.equal(Buffer.from(first).toString(), '{"a":1}\n{"a":2}\n');
  const buffer = first.buffer;
  pool.recycle(buffer);
  const second = pool.copy(Buffer.from('{"b":3}\n'));
  assert.equal(second.buffer, buffer, 'the recycled buffer is reused');
  assert.equal(Buffer.from(second).toString(), '{"b":3}\n', 'the view covers only the new bytes');
  pool.recycle(second.buffer);
  const big = pool.copy(new Uint8Array(buffer.byteLength + 1));
  assert.notEqual(big.buffer, buffer, 'a batch larger than the buffer gets a new one');
});

test('a copy survives the round trip to a thread and back by transfer', async () => {
  const pool = new RecycledBuffers();
  const { port1, port2 } = new MessageChannel();
  port2.on('message', (bytes: Uint8Array) => port2.postMessage(bytes.buffer, [bytes.buffer as ArrayBuffer]));
  const sent = pool.copy(Buffer.from('line\n'));
  port1.postMessage(sent, [sent.buffer]);
  assert.equal(sent.byteLength, 0, 'transferred, not cloned');
  const [back] = (await once(port1, 'message')) as [ArrayBuffer];
  pool.recycle(back);
  assert.equal(Buffer.from(pool.copy(Buffer.from('next\n'))).toString(), 'next\n');
  port1.close();
});
