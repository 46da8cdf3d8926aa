import type { NodeDefinition } from './node.ts';
import jsonlSource from '../sources/jsonl-source.ts';
import semanticIdsSource from '../sources/semantic-ids-source.ts';
import sqliteSource from '../sources/sqlite-source.ts';
import join from '../transforms/join.ts';
import merge from '../transforms/merge.ts';
import jsonlSink from '../sinks/jsonl-sink.ts';
import parquetSink from '../sinks/parquet-sink.ts';
import manifestSink from '../sinks/manifest-sink.ts';

/** Every built-in node type; they use the same interface a user's own node module does. */
export const builtinNodes: NodeDefinition[] = [jsonlSource, semanticIdsSource, sqliteSource, join, merge, jsonlSink, parquetSink, manifestSink] as NodeDefinition[];
