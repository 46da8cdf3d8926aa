import { ValidationError } from '../engine/errors.ts';
import { paramText } from '../engine/params.ts';
import { readPipelineFile } from '../engine/pipeline-file.ts';

/** A pipeline's declared parameters, as text (for people) or JSON (for tools): `animind pipeline params FILE`. */
export function listParams(file: string, json: boolean): string {
  const { spec, problems } = readPipelineFile(file);
  if (problems.length) throw problems.length === 1 ? problems[0]! : new ValidationError(problems);
  const params = spec.paramSpecs.map((p) => ({
    name: p.name,
    type: p.type.text,
    default: p.default,
    description: p.description,
  }));
  if (json) return JSON.stringify(params, null, 2) + '\n';
  const width = Math.max(0, ...params.map((p) => `${p.name}: ${p.type}`.length));
  const lines = params.map((p) => {
    const head = `${p.name}: ${p.type}`.padEnd(width);
    return `  ${head}  = ${paramText(p.default) || '""'}${p.description ? `  ${p.description}` : ''}`;
  });
  const usage = [
    'Set one with --set name=value (a list as a,b,c). A relative path resolves against the pipeline',
    "file's folder when it is a default, against the working folder when it is given with --set.",
  ].join('\n');
  return [`${spec.name} (${file}): ${params.length} parameters`, ...lines, '', usage, ''].join('\n');
}
