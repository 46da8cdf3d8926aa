/**
 * How the folders may import each other, checked by `npm run deps` (part of `npm test`).
 *
 *   engine/                          the runtime: runs any graph, knows no node
 *   sources/ transforms/ sinks/      generic nodes (their top-level modules)
 *   sources/prep/ transforms/prep/ sinks/prep/      the prep domain
 *   transforms/train/ sinks/trainer/                 the train domain
 *   config/                          TOML sections mapped onto pipeline parameters
 *   cli/                             commands, and the built-in node catalogue
 *
 * Arrows point down this list's dependencies: cli -> config, nodes -> engine; never back.
 */
const PRODUCT = '^(bin|cli|config|engine|sources|transforms|sinks|pipelines)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module must not end up importing itself: cycles make load order and reasoning fragile.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-two-way-folders',
      severity: 'error',
      comment: 'Folders form layers: no folder imports, directly or through others, a folder that imports it.',
      scope: 'folder',
      from: { path: PRODUCT },
      to: { circular: true },
    },
    {
      name: 'engine-is-pure',
      severity: 'error',
      comment: 'The engine runs any graph: it imports no node, no config and no command. The catalogue is passed in.',
      from: { path: '^engine/' },
      to: { path: '^(cli|config|sources|transforms|sinks|pipelines|trainer|test|bench)/' },
    },
    {
      name: 'nodes-know-no-commands',
      severity: 'error',
      comment: 'Nodes are what the commands compose: they import neither cli/ nor config/.',
      from: { path: '^(sources|transforms|sinks)/' },
      to: { path: '^(cli|config)/' },
    },
    {
      name: 'generic-nodes-know-no-domain',
      severity: 'error',
      comment: 'The top-level modules of sources/, transforms/ and sinks/ serve any pipeline: no prep or train module.',
      from: { path: '^(sources|transforms|sinks)/[^/]+$' },
      to: { path: '^(sources|transforms|sinks)/[^/]+/' },
    },
    {
      name: 'prep-knows-no-train',
      severity: 'error',
      comment: 'The prep and train domains meet only in files (prep rows), never in code.',
      from: { path: '/prep/' },
      to: { path: '^(transforms/train|sinks/trainer)/' },
    },
    {
      name: 'train-knows-no-prep',
      severity: 'error',
      comment: 'The prep and train domains meet only in files (prep rows), never in code.',
      from: { path: '^(transforms/train|sinks/trainer)/' },
      to: { path: '/prep/' },
    },
    {
      name: 'config-knows-no-nodes',
      severity: 'error',
      comment: 'config/ reads TOML and maps it onto pipeline parameters; it needs no node.',
      from: { path: '^config/' },
      to: { path: '^(sources|transforms|sinks)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(node_modules|build)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js', '.d.mts'] },
  },
};
