import { z } from 'zod';

/**
 * Option schemas that also accept the strings `${param}` interpolation produces, so
 * `--set target_examples=1000` or `--set task_b_mask_modes=last` work like YAML values.
 */

export const intOption = (description: string, min = 0) => z.coerce.number().int().min(min).describe(description);

export const numberOption = (description: string) => z.coerce.number().min(0).max(1).describe(description);

const splitCommas = (value: unknown) =>
  typeof value === 'string'
    ? value
        .split(',')
        .map((part) => part.trim())
        .filter((part) => part !== '')
    : value;

/** A list of integers, written as a YAML list or as `1,2,3`. */
export const intListOption = (description: string, defaults: number[]) =>
  z.preprocess(splitCommas, z.array(z.coerce.number().int()).min(1).default(defaults)).describe(description);

/** A list of enum values, written as a YAML list or as `a,b`. */
export const enumListOption = <const T extends readonly [string, ...string[]]>(values: T, description: string, defaults: T[number][]) =>
  z.preprocess(splitCommas, z.array(z.enum(values)).min(1).default(defaults)).describe(description);
