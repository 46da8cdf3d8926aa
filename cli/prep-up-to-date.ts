import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathOptions } from '../engine/options.ts';
import { planInputFiles, type Plan } from '../engine/validate.ts';
import { paramText } from '../engine/params.ts';
import { DigestCache } from '../sinks/digest-cache.ts';
import { fileDigest } from '../sinks/file-digest.ts';
import { toolVersion, type Manifest } from '../sinks/manifest-sink.ts';

const short = (sha: string) => sha.slice(0, 12);

/**
 * Why the outputs of `plan` cannot be kept as they are, or undefined when its manifest shows the
 * same tool version, seed, params and input bytes, and every output is still there, byte for byte.
 * `describeParam` turns a pipeline param into the name the user wrote (a TOML key); params in
 * `ignoredParams` cannot change the outputs, so they are not compared.
 */
export async function staleReason(
  plan: Plan,
  describeParam: (param: string) => string,
  ignoredParams: ReadonlySet<string> = new Set(),
): Promise<string | undefined> {
  const manifestNode = plan.nodes.find((n) => n.def.type === 'manifest-sink');
  if (!manifestNode) return 'no manifest is written (write_manifest = false), so there is nothing to compare with';
  const manifestFile = manifestNode.options.path as string;
  if (!existsSync(manifestFile)) return `there is no manifest at ${manifestFile} yet`;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  } catch (error) {
    return `the manifest ${manifestFile} is not valid JSON (${(error as Error).message})`;
  }
  const folder = path.dirname(manifestFile);
  const resolve = (recorded: string) => path.resolve(folder, recorded);

  // Another version may write different rows from the same inputs.
  if (manifest.tool?.version !== toolVersion())
    return `the outputs were written by animind ${manifest.tool?.version ?? '(unknown)'}, this is ${toolVersion()}`;
  if (manifest.seed !== plan.spec.seed) return `seed changed: ${manifest.seed} -> ${plan.spec.seed}`;
  const params = Object.fromEntries(Object.entries(plan.spec.params).map(([name, value]) => [name, paramText(value)]));
  for (const name of new Set([...Object.keys(params), ...Object.keys(manifest.params ?? {})]))
    if (!ignoredParams.has(name) && manifest.params?.[name] !== params[name])
      return `${describeParam(name)} changed: ${manifest.params?.[name] ?? '(unset)'} -> ${params[name] ?? '(unset)'}`;

  const recordedInputs = new Map((manifest.inputs ?? []).map((i) => [resolve(i.path), i]));
  const inputs = new Set(planInputFiles(plan).map((file) => file.path));
  const cache = new DigestCache();
  for (const file of inputs) {
    const recorded = recordedInputs.get(file);
    if (!recorded) return `input ${file} is not in the manifest`;
    const { sha256 } = await fileDigest(file, undefined, cache);
    if (sha256 !== recorded.sha256)
      return `input ${file} changed: sha256 ${short(recorded.sha256)}… -> ${short(sha256)}…`;
  }
  for (const file of recordedInputs.keys())
    if (!inputs.has(file)) return `the manifest lists input ${file}, which this run does not read`;

  const recordedOutputs = new Map((manifest.outputs ?? []).map((o) => [resolve(o.path), o]));
  for (const node of plan.nodes) {
    if (node.def.kind !== 'sink' || node === manifestNode) continue;
    for (const [option, role] of pathOptions(node.def.options)) {
      const file = node.options[option];
      if (role !== 'output' || typeof file !== 'string' || file === '-') continue;
      const recorded = recordedOutputs.get(file);
      if (!recorded) return `output ${file} is not in the manifest`;
      if (!existsSync(file)) return `output ${file} is missing`;
      if ((await fileDigest(file)).sha256 !== recorded.sha256)
        return `output ${file} was modified after the manifest was written`;
    }
  }
  return undefined;
}
