/**
 * A trainer worker that misbehaves on purpose (FAKE_WORKER selects how), speaking the pipe
 * protocol from trainer/PROTOCOL.md. `protocol` rejects the HELLO's protocol version as a newer
 * worker would. The other modes first do what the real worker does up to `ready` (the config
 * snapshot and the extended tokenizer, written into the HELLO's staging_dir), read the PHASE
 * frame, and then: `die-mid-batch` SIGKILLs itself halfway through reading the first BATCH frame;
 * `disk-full` reports a full disk as the real worker does (one error event, exit 1);
 * `checkpoint-then-die` saves checkpoint-1, is killed while saving checkpoint-2, and SIGKILLs itself.
 */
import { mkdirSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import path from 'node:path';
import { Tokenizer } from 'tokenizers';

const frames = new Socket({ fd: 3, readable: true, writable: false });
let buffered = Buffer.alloc(0);
const waiting: (() => void)[] = [];
frames.on('data', (chunk: Buffer) => {
  buffered = Buffer.concat([buffered, chunk]);
  waiting.splice(0).forEach((wake) => wake());
});

async function read(n: number): Promise<Buffer> {
  while (buffered.length < n) await new Promise<void>((wake) => waiting.push(wake));
  const out = buffered.subarray(0, n);
  buffered = buffered.subarray(n);
  return out;
}

async function readFrame(): Promise<{ type: number; payload: Buffer }> {
  const header = await read(5);
  return { type: header.readUInt8(0), payload: await read(header.readUInt32LE(1)) };
}

const emit = (event: Record<string, unknown>) => writeSync(4, JSON.stringify(event) + '\n');

const hello = JSON.parse((await readFrame()).payload.toString('utf8')) as {
  config: { tokenizer_path: string; out_dir: string; staging_dir: string };
  added_tokens: string[];
};
if (process.env.FAKE_WORKER === 'protocol') {
  emit({ event: 'error', message: 'unsupported protocol version 1 (this worker speaks 2)' });
  process.exit(2);
}

const staging = hello.config.staging_dir;
writeFileSync(path.join(staging, 'train_config_snapshot.json'), JSON.stringify({ config: hello.config }));
const tokenizer = Tokenizer.fromFile(path.join(hello.config.tokenizer_path, 'tokenizer.json'));
tokenizer.addSpecialTokens(hello.added_tokens.slice(0, 6));
tokenizer.addTokens(hello.added_tokens.slice(6));
const tokenizerDir = path.join(staging, 'tokenizer');
mkdirSync(tokenizerDir, { recursive: true });
tokenizer.save(path.join(tokenizerDir, 'tokenizer.json'));
const ids = hello.added_tokens.map((t) => tokenizer.tokenToId(t));
emit({
  event: 'ready',
  vocab_size: Math.max(...(ids as number[])) + 1,
  added_token_ids: ids,
  tokenizer_dir: tokenizerDir,
  model: 'fake',
  tiny_model: true,
});

const phase = JSON.parse((await readFrame()).payload.toString('utf8')) as { name: string };
if (process.env.FAKE_WORKER === 'disk-full') {
  const target = path.join(hello.config.out_dir, phase.name, 'checkpoint-1');
  emit({ event: 'error', message: `cannot write ${target}: no space left on device (ENOSPC)` });
  process.exit(1);
}
if (process.env.FAKE_WORKER === 'checkpoint-then-die') {
  const saved = path.join(staging, phase.name, 'checkpoint-1');
  mkdirSync(saved, { recursive: true });
  writeFileSync(path.join(saved, 'trainer_state.json'), JSON.stringify({ phase: phase.name, step: 1 }));
  emit({ event: 'checkpoint', phase: phase.name, step: 1, path: saved });
  mkdirSync(path.join(staging, phase.name, `checkpoint-2.tmp-${process.pid}`));
  process.kill(process.pid, 'SIGKILL');
}

const header = await read(5);
await read(Math.floor(header.readUInt32LE(1) / 2));
process.stderr.write('fake worker: dying mid-batch\n');
process.kill(process.pid, 'SIGKILL');
