import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ConfigError } from '../engine/errors.ts';
import { toDot, toMermaid } from '../engine/graph.ts';
import { parseOverrides } from '../engine/pipeline-file.ts';
import { EXIT, reportError, reportRejection } from './exit.ts';
import { listNodes } from './list-nodes.ts';
import { listParams } from './list-params.ts';
import { recommend } from './recommend.ts';
import { runPhase } from './run-phase.ts';
import { loadBuiltinPlan, runPipelineFile, type DisplayOptions } from './run-pipeline.ts';

const EPILOG = `Exit codes: 0 ok, 1 data or runtime error, 2 usage or config error, 130 interrupted.
Data goes to stdout only when a sink writes to '-'; logs and progress always go to stderr.`;

const displayOptions = <T>(y: Argv<T>) =>
  y
    .option('quiet', {
      alias: 'q',
      type: 'boolean',
      default: false,
      describe: 'no progress or log lines (errors still print)',
    })
    .option('log-format', {
      choices: ['text', 'json'] as const,
      default: 'text' as const,
      describe: 'log lines as text or as JSON objects (one per line)',
    })
    .option('progress', {
      choices: ['auto', 'bars', 'lines'] as const,
      default: 'auto' as const,
      describe: 'bars on a terminal, periodic log lines otherwise (auto)',
    });

const setOption = <T>(y: Argv<T>) =>
  y.option('set', {
    type: 'string',
    array: true,
    default: [] as string[],
    describe: "override a pipeline parameter: --set name=value (repeatable; parsed into the parameter's declared type)",
  });

const batchSizeOption = <T>(y: Argv<T>) =>
  y.option('batch-size', {
    type: 'number',
    describe:
      "rows per batch inside the engine (default: the file's batch_size, else 1024); any value gives the same bytes",
  });

/** A positive whole number, or a usage error naming the option. */
function batchSize(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new ConfigError(`--batch-size: expected a positive whole number, got ${value}`);
  return value;
}

const display = (argv: {
  quiet: boolean;
  'log-format': 'text' | 'json';
  progress: 'auto' | 'bars' | 'lines';
}): DisplayOptions => ({
  quiet: argv.quiet,
  logFormat: argv['log-format'],
  progress: argv.progress,
});

/** Runs a command's body and keeps the exit code it returns. */
type Act = (fn: () => Promise<number | void>) => () => Promise<void>;

const file = <T>(c: Argv<T>) =>
  c.positional('file', { type: 'string', demandOption: true, describe: 'pipeline YAML file' });

/** `animind pipeline run|validate|params|graph`. */
function pipelineCommands<T>(y: Argv<T>, act: Act) {
  return y
    .command(
      'run <file>',
      'validate a pipeline, then run it',
      (c) => displayOptions(batchSizeOption(setOption(file(c)))),
      (argv) =>
        act(async () => {
          const inputs = { overrides: parseOverrides(argv.set), batchSize: batchSize(argv['batch-size']) };
          await runPipelineFile(argv.file, inputs, display(argv));
        })(),
    )
    .command(
      'validate <file>',
      'check a pipeline without reading any data; every problem is listed with its line',
      (c) => setOption(file(c)),
      (argv) =>
        act(async () => {
          const plan = await loadBuiltinPlan(argv.file, { overrides: parseOverrides(argv.set) });
          process.stderr.write(`${argv.file}: ok (${plan.nodes.length} nodes)\n`);
        })(),
    )
    .command(
      'params <file>',
      'list the parameters a pipeline declares: type, default and description',
      (c) => file(c).option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
      (argv) => act(async () => void process.stdout.write(listParams(argv.file, argv.json)))(),
    )
    .command(
      'graph <file>',
      'print the pipeline graph as Graphviz dot or Mermaid',
      (c) => setOption(file(c)).option('format', { choices: ['dot', 'mermaid'] as const, default: 'dot' as const }),
      (argv) =>
        act(async () => {
          const plan = await loadBuiltinPlan(argv.file, { overrides: parseOverrides(argv.set) });
          const nodes = plan.nodes.map((n) => ({
            id: n.spec.id,
            type: n.def.type,
            kind: n.def.kind,
            inputs: n.inputs,
          }));
          process.stdout.write(argv.format === 'dot' ? toDot(plan.spec.name, nodes) : toMermaid(nodes));
        })(),
    )
    .demandCommand(1, 'name a pipeline command: run, validate, params or graph');
}

/** `animind run --phase prep|train`: the original tool's entry point. */
function phaseOptions<T>(y: Argv<T>) {
  return displayOptions(
    setOption(y)
      .option('phase', {
        choices: ['prep', 'train', 'eval'] as const,
        demandOption: true,
        describe: 'which phase to run',
      })
      .option('config', {
        type: 'string',
        default: 'config/recommender.toml',
        describe: 'TOML config with [prep], [train] and [eval] sections',
      }),
  );
}

/** `animind recommend`'s options. */
const recommendOptions = <T>(y: Argv<T>) =>
  y
    .option('run', { type: 'string', default: 'out/train/dry_run', describe: 'the train run folder' })
    .option('model', { type: 'string', default: 'final_model', describe: 'the model folder in it' })
    .option('history', { type: 'string', describe: 'anime ids or titles, comma-separated: --history 1,5,42' })
    .option('history-file', { type: 'string', describe: 'a JSON file holding a list of anime ids or titles' })
    .option('semantic-ids', {
      type: 'string',
      default: 'fixtures/semantic_ids.jsonl',
      describe: 'semantic_ids.jsonl: the valid IDs and their titles',
    })
    .option('top-k', { type: 'number', default: 10, describe: 'how many anime' })
    .option('include-history', {
      type: 'boolean',
      default: false,
      describe: 'allow anime already in the history',
    })
    .option('device', { type: 'string', default: 'auto', describe: 'auto, cpu, cuda or cuda:N' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object a line on stdout' });

async function main(): Promise<number> {
  let code: number = EXIT.ok;
  const act: Act = (fn) => async () => {
    code = (await fn()) ?? EXIT.ok;
  };
  const parser = yargs(hideBin(process.argv))
    .scriptName('animind')
    .usage(
      '$0 <command>\n\nTeach an LLM to recommend anime by semantic IDs: streaming prep pipelines and a LoRA trainer.',
    )
    .command('pipeline', 'run, check, list the parameters of, or draw a YAML pipeline', (y) => pipelineCommands(y, act))
    .command(
      'nodes',
      'list every built-in node type with its inputs, options and defaults',
      (y) => y.option('json', { type: 'boolean', default: false, describe: 'machine-readable output' }),
      (argv) => act(async () => void process.stdout.write(listNodes(argv.json)))(),
    )
    .command(
      'run',
      "run a phase from a TOML config, as the original tool did (same graph as 'pipeline run')",
      phaseOptions,
      (argv) => act(async () => runPhase(argv.phase, argv.config, display(argv), parseOverrides(argv.set)))(),
    )
    .command(
      'recommend',
      'the top K anime a trained model recommends after a watch history (trie-constrained beam search)',
      recommendOptions,
      (argv) =>
        act(() =>
          recommend({
            run: argv.run,
            model: argv.model,
            history: argv.history,
            historyFile: argv['history-file'],
            semanticIds: argv['semantic-ids'],
            topK: argv['top-k'],
            includeHistory: argv['include-history'],
            device: argv.device,
            json: argv.json,
          }),
        )(),
    )
    .demandCommand(1, 'name a command')
    .strict()
    .epilog(EPILOG)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((message, error) => {
      throw error ?? new ConfigError(message);
    });
  await parser.parseAsync();
  return code;
}

// A promise rejected with nothing to handle it (as one a user's node let go): one line, not Node's stack.
process.on('unhandledRejection', (reason) => process.exit(reportRejection(reason)));

process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
});

main().then(
  (code) => process.exit(code),
  (error) => process.exit(reportError(error)),
);
