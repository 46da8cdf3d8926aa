import type { TrainConfig } from '../config/train-config.ts';
import { ConfigError } from '../engine/errors.ts';
import type { DisplayOptions } from './run-pipeline.ts';

/** `animind run --phase train`: receives the validated `[train]` section (paths already resolved). */
export async function runTrainPhase(_config: TrainConfig, _display: DisplayOptions): Promise<number> {
  throw new ConfigError('train phase not wired yet');
}
