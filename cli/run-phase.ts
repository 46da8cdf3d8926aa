import type { DisplayOptions } from './run-pipeline.ts';
import { ConfigError } from '../engine/errors.ts';

/** `animind run --phase …`: the original tool's entry point, mapped onto the YAML pipelines. */
export async function runPhase(phase: 'prep' | 'train', config: string, _display: DisplayOptions): Promise<number> {
  throw new ConfigError(`phase '${phase}' from ${config} is not available yet`);
}
