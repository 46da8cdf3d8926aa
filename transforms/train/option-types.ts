import { z } from 'zod';

/**
 * Option types for values that arrive as text: a `${param}` in a pipeline file is always
 * interpolated as a string, so numbers, flags and lists are parsed from their text form here.
 */
export const int = () => z.coerce.number().int();
export const num = () => z.coerce.number();

const FLAGS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false, yes: true, no: false };

/**
 * A boolean written as true/false (or 1/0, yes/no); `z.coerce.boolean` would read "false" as true.
 * The default sits inside the preprocess step so `animind nodes` can show it.
 */
export const flag = (fallback: boolean) =>
  z.preprocess((value) => (typeof value === 'string' ? (FLAGS[value.trim().toLowerCase()] ?? value) : value), z.boolean().default(fallback));

/** A list given either as a YAML list or as one comma-separated string (`--set modules=q_proj,v_proj`). */
export const stringList = (fallback: string[]) =>
  z.preprocess(
    (value) => (typeof value === 'string' ? value.split(',').map((s) => s.trim()).filter(Boolean) : value),
    z.array(z.string().min(1)).min(1).default(fallback),
  );
