#!/usr/bin/env node
// Installs the locked npm dependencies and builds the user-history SQLite extension (the install
// script in package.json). better-sqlite3 and node-pty compile native code too; their prebuilt
// binaries and node-gyp's header download come from hosts that some machines cannot reach (only
// package registries), so when this Node ships its own headers we point node-gyp at them. They
// match the running Node exactly, so machines that could download lose nothing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const env = { ...process.env };
const prefix = path.resolve(path.dirname(process.execPath), '..');
if (!env.npm_config_nodedir && existsSync(path.join(prefix, 'include', 'node', 'node.h')))
  env.npm_config_nodedir = prefix;

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const result = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { stdio: ['ignore', 'inherit', 'inherit'], env });
if (result.status !== 0) {
  process.stderr.write('setup: npm ci failed; native modules need python3, make and a C/C++ compiler\n');
  process.exit(result.status ?? 1);
}
