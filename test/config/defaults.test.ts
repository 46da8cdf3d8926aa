import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { builtins } from '../../cli/builtin-nodes.ts';
import { TRAIN_PARAMS } from '../../cli/run-train-phase.ts';
import { trainSchema } from '../../config/train-config.ts';
import { describeOptions } from '../../engine/options.ts';
import { readPipelineFile } from '../../engine/pipeline-file.ts';
import { repoRoot } from '../helpers/cli.ts';

const PIPELINES = ['prep.yaml', 'train.yaml', 'catalog.yaml'].map((name) => path.join(repoRoot, 'pipelines', name));

test('each setting has one default: a node option set from a parameter has no other default than the parameter', () => {
  const disagreements: string[] = [];
  for (const file of PIPELINES) {
    const params = readPipelineFile(file).spec.params;
    const nodes = (parse(readFileSync(file, 'utf8')) as { nodes: Record<string, Record<string, unknown>> }).nodes;
    for (const [id, body] of Object.entries(nodes)) {
      const def = builtins.list().find((node) => node.type === body.use);
      if (!def) continue;
      const defaults = new Map(describeOptions(def.options).map((o) => [o.name, o.default]));
      for (const [option, value] of Object.entries(body)) {
        const param = typeof value === 'string' ? /^\$\{(\w+)\}$/.exec(value)?.[1] : undefined;
        const own = defaults.get(option);
        if (param && own !== undefined && JSON.stringify(own) !== JSON.stringify(params[param]))
          disagreements.push(
            `${path.basename(file)}: ${id}.${option} defaults to ${JSON.stringify(own)}, ` +
              `parameter ${param} to ${JSON.stringify(params[param])}`,
          );
      }
    }
  }
  assert.deepEqual(disagreements, []);
});

test("[train] keys that set train.yaml's parameters have no default of their own", () => {
  const config = trainSchema.parse({ out_dir: 'runs', tokens: { semantic_vocab_path: 'v.json' } }) as Record<
    string,
    unknown
  >;
  const declared = new Set(
    readPipelineFile(path.join(repoRoot, 'pipelines/train.yaml')).spec.paramSpecs.map((p) => p.name),
  );
  for (const [param, key] of Object.entries(TRAIN_PARAMS)) {
    assert.ok(declared.has(param), `train.yaml declares ${param}`);
    if (key === 'out_dir' || key === 'tokens.semantic_vocab_path') continue;
    const value = key
      .split('.')
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], config);
    assert.equal(value, undefined, `[train] ${key} has a default of its own: ${JSON.stringify(value)}`);
  }
});
