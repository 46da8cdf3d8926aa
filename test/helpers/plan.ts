import { builtins } from '../../cli/builtin-nodes.ts';
import type { ParamOverride } from '../../engine/params.ts';
import { loadPlan, type Plan } from '../../engine/validate.ts';

/**
 * Reads a pipeline with the built-in nodes, its parameters set as `--set` would set them (text,
 * parsed into each parameter's declared type), and optionally another batch size.
 */
export function loadTestPlan(
  file: string,
  params: Record<string, string | number | boolean> = {},
  batchSize?: number,
): Promise<Plan> {
  const overrides: Record<string, ParamOverride> = Object.fromEntries(
    Object.entries(params).map(([name, value]) => [name, { value: String(value), text: true }]),
  );
  return loadPlan(file, { registry: builtins, overrides, ...(batchSize === undefined ? {} : { batchSize }) });
}
