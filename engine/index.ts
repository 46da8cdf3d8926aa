/**
 * The package's public entry, `import { defineTransform, port, z } from 'animind'`: what a user's
 * node module needs, wherever it lies on disk. The CLI resolves `animind` (and `zod`) for a user's
 * module to its own copy (engine/compiled-cli-hooks.mjs), so the node gets the very classes and
 * schemas the CLI checks it with: `instanceof DataError` holds and a zod schema is the CLI's zod.
 */
export { z } from 'zod';
export { defineSink, defineSource, defineTransform, noStats, port, rowStats } from './node.ts';
export type {
  Batch,
  FileRef,
  Inputs,
  NodeContext,
  NodeDefinition,
  NodeKind,
  OptionProblem,
  PipelineInfo,
  Port,
  PortStreams,
  Ports,
  RowsOf,
  SinkNode,
  SourceNode,
  Stats,
  StatsHandle,
  StatsOf,
  StatsSchema,
  TransformNode,
  WrittenOutput,
} from './node.ts';
export { AnimindError, ConfigError, DataError } from './errors.ts';
export type { Location } from './errors.ts';
export { fromAsync, fromGenerator, type Stream } from './stream.ts';
export type { Column, Columns } from './columns.ts';
export type { Progress } from './progress.ts';
export { runTransform, type NodeRun } from './run-node.ts';
