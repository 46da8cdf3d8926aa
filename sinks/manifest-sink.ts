import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../engine/errors.ts';
import { defineSink, port } from '../engine/node.ts';
import { outputPath } from '../engine/options.ts';
import { paramText } from '../engine/params.ts';
import { DigestCache } from './digest-cache.ts';
import { fileDigest, fileDigests, type FileDigest } from './file-digest.ts';
import { forEachBatch } from './for-each-batch.ts';

export interface ManifestInput extends FileDigest {
  /** See manifestPath. */
  path: string;
  /** `node.option` of every option that names this file. */
  used_by: string[];
}

export interface ManifestOutput extends FileDigest {
  path: string;
  node: string;
  /** Rows the producing sink reported; null for a sink that does not count rows. */
  rows: number | null;
}

export interface Manifest {
  tool: { name: string; version: string };
  generated_at: string;
  pipeline: string;
  seed: number;
  /**
   * Every pipeline parameter after `--set` overrides, as text:
   * together with the inputs, what the outputs were built from.
   */
  params: Record<string, string>;
  config: Record<string, unknown>;
  inputs: ManifestInput[];
  outputs: ManifestOutput[];
}

export const toolVersion = (): string =>
  (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const isoTime = z.iso.datetime({ offset: true });

function generatedAt(pinned: string): string {
  const fixed = pinned || process.env.ANIMIND_FIXED_TIME || '';
  if (!fixed) return new Date().toISOString();
  if (!isoTime.safeParse(fixed).success)
    throw new ConfigError(
      `${pinned ? 'pin_time' : 'ANIMIND_FIXED_TIME'} '${fixed}': ` +
        `expected an ISO 8601 time such as 2024-01-01T00:00:00Z`,
    );
  return fixed;
}

/**
 * A path as the manifest records it: relative to the manifest's folder when the two share a folder
 * below the filesystem root (a repository or a data folder moved as a whole keeps working), else absolute.
 */
function manifestPath(folder: string, file: string): string {
  const relative = path.relative(folder, file);
  const up = relative.split(path.sep).filter((part) => part === '..').length;
  const common = path.resolve(folder, ...Array<string>(up).fill('..'));
  return common === path.parse(common).root ? file : relative.split(path.sep).join('/');
}

/**
 * What a run read and wrote, so a later run (`rebuild = false`) or a person can tell whether the
 * outputs still match their inputs. It takes one input only because a sink must have one: the
 * stream is drained, not recorded, so any node will do (the prep pipeline feeds it the final rows).
 */
export default defineSink({
  type: 'manifest-sink',
  kind: 'sink',
  description:
    'Writes a JSON manifest once every other sink is done: params, seed, ' +
    'config, input files (size, sha256) and outputs (rows, size, sha256).',
  options: z.strictObject({
    path: outputPath('manifest file to write (JSON)'),
    pin_time: z
      .string()
      .refine((v) => v === '' || isoTime.safeParse(v).success, 'expected an ISO 8601 time such as 2024-01-01T00:00:00Z')
      .default('')
      .describe('ISO time written as generated_at, for reproducible files (env ANIMIND_FIXED_TIME does the same)'),
  }),
  inputs: { in: port() },
  stats: z.object({ inputs: z.number(), outputs: z.number() }),
  async create(ctx, inputs) {
    const target = ctx.options.path;
    const folder = path.dirname(target);
    const time = generatedAt(ctx.options.pin_time);
    // Inputs are hashed on a thread of their own once the first row gets here: by then the sources
    // have been read, so hashing (~4 s of processor for an 8 GB database) does not compete with
    // the scan, which keeps both cores busy, but with writing, which leaves one idle.
    let hashing: Promise<ManifestInput[]> | undefined;
    const startHashing = async (): Promise<ManifestInput[]> => {
      const files = ctx.pipeline.inputFiles;
      const digests = files.length
        ? await fileDigests(
            files.map((file) => file.path),
            ctx.signal,
            new DigestCache(),
          )
        : [];
      return files.map((file, i) => ({ path: manifestPath(folder, file.path), used_by: file.usedBy, ...digests[i]! }));
    };
    // Drained before waiting on the other sinks: they may share this stream, and an unread fork holds them back.
    const start = () => {
      hashing ??= startHashing();
      hashing.catch(() => {});
    };
    await forEachBatch(inputs.ports.in, start);
    start();
    const written = await ctx.otherSinksDone();

    const inputFiles = await hashing!;
    // The temporary files hold the final bytes; the paths recorded are where the runtime will rename them.
    const outputs = await Promise.all(
      written.map(async (file): Promise<ManifestOutput> => {
        // A sink that hashed the bytes as it wrote them saves reading the file again.
        const digest = file.digest ?? (await fileDigest(file.tmpPath, ctx.signal));
        return { path: manifestPath(folder, file.path), node: file.node, rows: file.rows, ...digest };
      }),
    );
    const manifest: Manifest = {
      tool: { name: 'animind', version: toolVersion() },
      generated_at: time,
      pipeline: ctx.pipeline.name,
      seed: ctx.pipeline.seed,
      params: Object.fromEntries(Object.entries(ctx.pipeline.params).map(([name, value]) => [name, paramText(value)])),
      config: { ...ctx.pipeline.config },
      inputs: inputFiles,
      outputs,
    };
    await writeFile(ctx.output(target), JSON.stringify(manifest, null, 2) + '\n');
    ctx.stats.inputs = inputFiles.length;
    ctx.stats.outputs = outputs.length;
  },
});
