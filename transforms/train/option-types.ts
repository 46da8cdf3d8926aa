import { z } from 'zod';

/** Option types the train nodes share. Values arrive typed: a `${param}` keeps its declared type. */
export const int = () => z.int();
export const num = () => z.number();
export const flag = (fallback: boolean) => z.boolean().default(fallback);
export const stringList = (fallback: string[]) => z.array(z.string().min(1)).min(1).default(fallback);
