import { ConfigError, type Location } from './errors.ts';

/** A parameter's value once parsed into its declared type. */
export type ParamValue = string | number | boolean | readonly (string | number)[];

const BASE_TYPES = ['integer', 'number', 'boolean', 'string', 'path'] as const;
const LIST_TYPES = ['integer[]', 'number[]', 'string[]'] as const;
type BaseType = (typeof BASE_TYPES)[number];
type ListType = (typeof LIST_TYPES)[number];

/**
 * A parameter's declared type: a base type, a list of one, or a union of a base type and literal
 * words (`integer | auto`). Lists are written as YAML or TOML lists, or on the command line as
 * `a,b,c`.
 */
export interface ParamType {
  readonly base: BaseType | ListType;
  /** Words accepted as they are besides the base type (`auto`). */
  readonly literals: readonly string[];
  /** As written in the pipeline file, for messages and `animind pipeline params`. */
  readonly text: string;
}

export interface ParamSpec {
  readonly name: string;
  readonly type: ParamType;
  readonly default: ParamValue;
  readonly description: string;
  readonly line: number;
}

/** A value for a parameter from outside the pipeline file: text from `--set`, or a typed value from a config file. */
export interface ParamOverride {
  readonly value: unknown;
  /** Command-line text, parsed into the parameter's type; other values must have the type already. */
  readonly text?: boolean;
  /** Where it came from (a config file's key and line), so a bad value points there. */
  readonly location?: Location;
}

/** Parses a type as written in a pipeline file; a string describing the problem when it is not one. */
export function parseParamType(text: string): ParamType | string {
  const parts = text.split('|').map((part) => part.trim());
  const types = parts.filter(
    (part) => (BASE_TYPES as readonly string[]).includes(part) || (LIST_TYPES as readonly string[]).includes(part),
  );
  const literals = parts.filter((part) => !types.includes(part));
  const expected = `${[...BASE_TYPES, ...LIST_TYPES].join(', ')}, or one of them | literal words (integer | auto)`;
  if (types.length !== 1) return `type '${text}': expected ${expected}`;
  if (literals.some((word) => !/^[A-Za-z_][\w-]*$/.test(word)))
    return `type '${text}': literal words are letters, digits, _ and -`;
  return { base: types[0] as BaseType | ListType, literals, text: parts.join(' | ') };
}

const FLAGS: Record<string, boolean> = { true: true, false: false };

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null || value === undefined) return 'nothing';
  if (typeof value === 'object') return 'a table';
  return `${typeof value} ${JSON.stringify(value)}`;
}

/** One value of a base type, from text (command line) or as given (YAML, TOML); undefined when it does not fit. */
function baseValue(type: BaseType, value: unknown, fromText: boolean): ParamValue | undefined {
  switch (type) {
    case 'integer': {
      const n = fromText && typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
      return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined;
    }
    case 'number': {
      const n = fromText && typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
    }
    case 'boolean': {
      if (typeof value === 'boolean') return value;
      return fromText && typeof value === 'string' ? FLAGS[value.trim().toLowerCase()] : undefined;
    }
    case 'string':
      return typeof value === 'string' ? value : undefined;
    case 'path':
      // An empty path would name the working folder or the root (`out_dir=` from an unset variable).
      return typeof value === 'string' && value.trim() !== '' ? value : undefined;
  }
}

const expectedText = (type: ParamType): string => {
  const base = {
    integer: 'an integer',
    number: 'a number',
    boolean: 'true or false',
    string: 'a string',
    path: 'a non-empty path',
    'integer[]': 'a list of integers',
    'number[]': 'a list of numbers',
    'string[]': 'a list of strings',
  }[type.base];
  return [base, ...type.literals.map((word) => `"${word}"`)].join(' or ');
};

/**
 * A value in a parameter's type: `fromText` values (the command line) are parsed from their text,
 * others must already have the type (YAML, TOML). Throws a ConfigError naming `where`.
 */
export function parseParam(
  spec: Pick<ParamSpec, 'name' | 'type'>,
  value: unknown,
  fromText: boolean,
  where: string,
  location: Location = {},
): ParamValue {
  const { type } = spec;
  if (typeof value === 'string' && type.literals.includes(value.trim())) return value.trim();
  let parsed: ParamValue | undefined;
  if (type.base.endsWith('[]')) {
    const element = type.base.slice(0, -2) as BaseType;
    const items =
      fromText && typeof value === 'string'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== '')
        : value;
    // An empty list is a value (no tags); a node that needs entries says so in its own options.
    if (Array.isArray(items)) {
      const values = items.map((item) => baseValue(element, item, fromText));
      if (values.every((v) => v !== undefined)) parsed = values as (string | number)[];
    }
  } else parsed = baseValue(type.base as BaseType, value, fromText);
  const got = fromText ? JSON.stringify(value) : describe(value);
  if (parsed === undefined)
    throw new ConfigError(`${where ? `${where}: ` : ''}expected ${expectedText(type)}, got ${got}`, location);
  return parsed;
}

/** A value as it reads inside a longer string (`${out_dir}/x.jsonl`) and on the command line. */
export const paramText = (value: ParamValue): string => (Array.isArray(value) ? value.join(',') : String(value));
