import { z } from 'zod';

/** Option schemas the prep nodes share. Values arrive typed: a `${param}` keeps its declared type. */

export const intOption = (description: string, min = 0) => z.int().min(min).describe(description);

export const numberOption = (description: string) => z.number().min(0).max(1).describe(description);

/** A list of integers. */
export const intListOption = (description: string, defaults: number[]) =>
  z.array(z.int()).min(1).default(defaults).describe(description);

/** A list of enum values. */
export const enumListOption = <const T extends readonly [string, ...string[]]>(
  values: T,
  description: string,
  defaults: T[number][],
) => z.array(z.enum(values)).min(1).default(defaults).describe(description);
