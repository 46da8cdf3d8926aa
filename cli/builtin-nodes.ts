import type { NodeDefinition } from '../engine/node.ts';
import { NodeRegistry } from '../engine/registry.ts';
import jsonlSource from '../sources/jsonl-source.ts';
import semanticIdsSource from '../sources/prep/semantic-ids-source.ts';
import sqliteSource from '../sources/sqlite-source.ts';
import join from '../transforms/join.ts';
import merge from '../transforms/merge.ts';
import jsonlSink from '../sinks/jsonl-sink.ts';
import parquetSink from '../sinks/parquet-sink.ts';
import manifestSink from '../sinks/manifest-sink.ts';
import prepCleanAnime from '../transforms/prep/clean-anime.ts';
import prepCatalog from '../transforms/prep/catalog.ts';
import prepTaskA from '../transforms/prep/task-a.ts';
import prepGroupUsers from '../transforms/prep/group-users.ts';
import prepHistory from '../transforms/prep/history.ts';
import prepUserHistories from '../transforms/prep/user-histories/user-histories.ts';
import prepMask from '../transforms/prep/mask.ts';
import prepTaskB from '../transforms/prep/task-b.ts';
import prepSeeds from '../transforms/prep/seeds.ts';
import prepTaskC from '../transforms/prep/task-c.ts';
import prepHeldOut from '../transforms/prep/held-out.ts';
import prepDropHeldOut from '../transforms/prep/drop-held-out.ts';
import prepTrainHistories from '../transforms/prep/train-histories.ts';
import prepSample from '../transforms/prep/sample.ts';
import prepShuffle from '../transforms/prep/shuffle.ts';
import prepLeakageAudit from '../transforms/prep/leakage-audit.ts';
import prepSummarySink from '../sinks/prep/summary-sink.ts';
import dryRunSample from '../transforms/train/dry-run-sample.ts';
import chatFormat from '../transforms/train/chat-format.ts';
import tokenize from '../transforms/train/tokenize.ts';
import packSteps from '../transforms/train/pack-steps.ts';
import phaseMix from '../transforms/train/phase-mix.ts';
import englishEval from '../transforms/train/english-eval.ts';
import generalInstructions from '../sources/train/general-instructions-source.ts';
import englishTexts from '../sources/train/english-texts-source.ts';
import trainerSink from '../sinks/trainer/trainer-sink.ts';
import recommenderEval from '../sinks/eval/recommender-eval-sink.ts';

/** Every built-in node type; they use the same interface a user's own node module does. */
export const builtinNodes: NodeDefinition[] = [
  jsonlSource,
  semanticIdsSource,
  sqliteSource,
  join,
  merge,
  jsonlSink,
  parquetSink,
  manifestSink,
  // The prep phase (docs/prep.md), in pipeline order.
  prepCleanAnime,
  prepCatalog,
  prepTaskA,
  prepGroupUsers,
  prepHistory,
  prepUserHistories,
  prepMask,
  prepTaskB,
  prepSeeds,
  prepTaskC,
  prepHeldOut,
  prepDropHeldOut,
  prepTrainHistories,
  prepSample,
  prepShuffle,
  prepLeakageAudit,
  prepSummarySink,
  // The train phase (docs/train.md), in pipeline order.
  dryRunSample,
  generalInstructions,
  englishTexts,
  chatFormat,
  tokenize,
  phaseMix,
  packSteps,
  englishEval,
  trainerSink,
  // Evaluation (docs/eval.md).
  recommenderEval,
];

/** What `use:` can name in the CLI's pipelines, besides user modules given by path. */
export const builtins = new NodeRegistry(builtinNodes);
