import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../engine/errors.ts';
import { defineSink } from '../engine/node.ts';
import { outputPath, pathOptions } from '../engine/options.ts';
import type { RuntimeContext } from '../engine/runtime.ts';
import type { Plan } from '../engine/validate.ts';
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
  /** Every pipeline parameter after `--set` overrides: together with the inputs, what the outputs were built from. */
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
    throw new ConfigError(`${pinned ? 'pin_time' : 'ANIMIND_FIXED_TIME'} '${fixed}': expected an ISO 8601 time such as 2024-01-01T00:00:00Z`);
  return fixed;
}

/** Every file the plan's nodes read (input path options and declared input files), grouped by path. */
export function planInputFiles(plan: Plan): Map<string, string[]> {
  const files = new Map<string, string[]>();
  const add = (file: unknown, use: string) => {
    if (typeof file !== 'string' || file === '-' || file === '') return;
    files.set(file, [...(files.get(file) ?? []), use]);
  };
  for (const { spec, def, options } of plan.nodes) {
    for (const [option, role] of pathOptions(def.options)) if (role === 'input') add(options[option], `${spec.id}.${option}`);
    for (const ref of def.files?.(options as never) ?? []) if (ref.role === 'input') add(ref.path, `${spec.id}.${ref.option}`);
  }
  return files;
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
    'Writes a JSON manifest once every other sink is done: params, seed, config, input files (size, sha256) and outputs (rows, size, sha256).',
  options: z.strictObject({
    path: outputPath('manifest file to write (JSON)'),
    config: z.record(z.string(), z.unknown()).default({}).describe('settings recorded verbatim (animind run puts its TOML section here)'),
    pin_time: z
      .string()
      .refine((v) => v === '' || isoTime.safeParse(v).success, 'expected an ISO 8601 time such as 2024-01-01T00:00:00Z')
      .default('')
      .describe('ISO time written as generated_at, for reproducible files (env ANIMIND_FIXED_TIME does the same)'),
  }),
  inputs: { ports: ['in'] },
  async create(ctx, inputs) {
    const runtime = ctx as RuntimeContext<typeof ctx.options>;
    const target = ctx.options.path;
    const folder = path.dirname(target);
    const time = generatedAt(ctx.options.pin_time);
    // Inputs are hashed on a thread of their own once the first row gets here: by then the sources
    // have been read, so hashing (~4 s of processor for an 8 GB database) does not compete with
    // the scan, which keeps both cores busy, but with writing, which leaves one idle.
    let hashing: Promise<ManifestInput[]> | undefined;
    const startHashing = async (): Promise<ManifestInput[]> => {
      const files = [...planInputFiles(runtime.plan)];
      const digests = files.length ? await fileDigests(files.map(([file]) => file), ctx.signal, new DigestCache()) : [];
      return files.map(([file, used_by], i) => ({ path: manifestPath(folder, file), used_by, ...digests[i]! }));
    };
    // Drained before waiting on the other sinks: they may share this stream, and an unread fork holds them back.
    const start = () => {
      hashing ??= startHashing();
      hashing.catch(() => {});
    };
    await forEachBatch(inputs.ports.in!, start);
    start();
    await runtime.otherSinksDone();

    const inputFiles = await hashing!;
    // The temporary files hold the final bytes; the paths recorded are where the runtime will rename them.
    const outputs = await Promise.all(
      runtime.outputFiles
        .filter((file) => file.node !== ctx.id)
        .map(async (file): Promise<ManifestOutput> => {
          const { rows, file_digest: reported } = (ctx.allStats[file.node] ?? {}) as { rows?: unknown; file_digest?: FileDigest & { path: string } };
          // A sink that hashed the bytes as it wrote them saves reading the file again.
          const digest = reported?.path === file.tmpPath ? { bytes: reported.bytes, sha256: reported.sha256 } : await fileDigest(file.tmpPath, ctx.signal);
          return { path: manifestPath(folder, file.path), node: file.node, rows: typeof rows === 'number' ? rows : null, ...digest };
        }),
    );
    const manifest: Manifest = {
      tool: { name: 'animind', version: toolVersion() },
      generated_at: time,
      pipeline: ctx.pipeline.name,
      seed: ctx.pipeline.seed,
      params: runtime.plan.spec.params,
      config: ctx.options.config,
      inputs: inputFiles,
      outputs,
    };
    await writeFile(ctx.output(target), JSON.stringify(manifest, null, 2) + '\n');
    ctx.stats.inputs = inputFiles.length;
    ctx.stats.outputs = outputs.length;
  },
});
