import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomGenerator } from 'pure-rand/types/RandomGenerator';

/**
 * 53-bit string hash (cyrb53 construction): two 32-bit lanes mixed with Math.imul, so it
 * stays in fast integer arithmetic. Collisions only cost a tie-break, never correctness.
 */
export function hash53(text: string, seed = 0): number {
  return finish53(absorb(0xdeadbeef ^ seed, 0x41c6ce57 ^ seed, text));
}

/** hash53's two lanes part way: KeyedRandom absorbs its key prefixes once and goes on from there. */
interface Lanes {
  h1: number;
  h2: number;
}

function absorb(h1: number, h2: number, text: string): Lanes {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  return { h1, h2 };
}

function finish53({ h1, h2 }: Lanes): number {
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

const TWO_POW_53 = 2 ** 53;

/**
 * Random values that are a pure function of (pipeline seed, node id, record key, purpose), so
 * a record gets the same choices whatever order, batch or worker it arrives in.
 */
export class KeyedRandom {
  private readonly base: string;
  /** hash53's lanes after `${base}${purpose}\u0000`, per purpose: a key is hashed without building that string. */
  private readonly prefixes = new Map<string, Lanes>();

  constructor(seed: number, node: string) {
    this.base = `${seed}\u0000${node}\u0000`;
  }

  /** A 53-bit integer for the key; `purpose` separates independent draws for the same record. */
  hash(key: string | number, purpose = ''): number {
    let prefix = this.prefixes.get(purpose);
    if (!prefix) this.prefixes.set(purpose, (prefix = absorb(0xdeadbeef, 0x41c6ce57, `${this.base}${purpose}\u0000`)));
    return finish53(absorb(prefix.h1, prefix.h2, typeof key === 'string' ? key : String(key)));
  }

  /** Uniform in [0, 1). */
  uniform(key: string | number, purpose = ''): number {
    return this.hash(key, purpose) / TWO_POW_53;
  }

  /** Uniform integer in [0, n). */
  int(key: string | number, n: number, purpose = ''): number {
    return Math.floor(this.uniform(key, purpose) * n);
  }

  /** A sequential generator for one record, for draws that need many numbers. */
  generator(key: string | number, purpose = ''): RandomGenerator {
    return xoroshiro128plus(this.hash(key, purpose) | 0);
  }
}

/** The sequential generator for a node: seeded by (pipeline seed, node id, stream name). */
export function nodeGenerator(seed: number, node: string, stream = ''): RandomGenerator {
  return xoroshiro128plus(hash53(`${seed}\u0000${node}\u0000${stream}`) | 0);
}
