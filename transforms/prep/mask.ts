import { z } from 'zod';
import { defineTransform, port } from '../../engine/node.ts';
import type { KeyedRandom } from '../../engine/random.ts';
import { enumListOption } from './options.ts';
import type { MaskedHistory, MaskMode, UserHistory } from './types.ts';

export const MASK_MODES = ['last', 'random'] as const;

/**
 * Task B step 4: one masked position per mode, in order, skipping a position already taken.
 * `random` is keyed by (user id, mode), so it does not depend on arrival order or batching.
 */
export function maskPositions(
  userId: number,
  length: number,
  modes: readonly MaskMode[],
  keyed: KeyedRandom,
): [MaskMode, number][] {
  if (length < 2) return [];
  const taken: [MaskMode, number][] = [];
  for (const mode of modes) {
    const index = mode === 'last' ? length - 1 : keyed.int(userId, length - 1, mode);
    if (!taken.some(([, i]) => i === index)) taken.push([mode, index]);
  }
  return taken;
}

/** One masked history per (eligible user, mask mode). */
export default defineTransform({
  type: 'prep-mask',
  kind: 'transform',
  description: 'Chooses the masked position of each Task B history per mask mode (last, random keyed by user id).',
  options: z.strictObject({
    task_b_mask_modes: enumListOption(
      MASK_MODES,
      'mask modes, in order: last = final position, random = uniform in [0, len-2]',
      ['last', 'random'],
    ),
  }),
  inputs: { in: port<UserHistory>() },
  stats: z.object({ masked: z.record(z.string(), z.number()) }),
  create(ctx, inputs) {
    const modes = ctx.options.task_b_mask_modes;
    const masked: Record<string, number> = Object.fromEntries(MASK_MODES.map((m) => [m, 0]));
    ctx.stats.masked = masked;
    return inputs.ports.in.map((batch) => {
      const out: MaskedHistory[] = [];
      for (const history of batch) {
        if (!history.eligible) continue;
        for (const [mode, index] of maskPositions(history.user_id, history.rows.length, modes, ctx.keyed)) {
          masked[mode]!++;
          out.push({ user_id: history.user_id, rows: history.rows, mask_mode: mode, mask_index: index });
        }
      }
      return out;
    });
  },
});
