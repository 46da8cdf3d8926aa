/**
 * Text cleaning shared by every prep node (spec "Cleaning"). A placeholder is treated exactly
 * like a missing value, so no template can ever print one.
 */

const SYNOPSIS_PLACEHOLDER = 'No synopsis information has been added';
const YEAR_IN_TEXT = /(?<!\d)(\d{4})(?!\d)/;

/** Whitespace runs (spaces, tabs, CR/LF) collapsed to one space, trimmed. */
export function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Whether already-collapsed text stands for "no value" in the source data. */
export function isPlaceholder(text: string): boolean {
  return text === '' || text === 'N/A' || text === 'None' || text === '-' || text.toLowerCase() === 'unknown';
}

export function isSynopsisPlaceholder(text: string): boolean {
  return isPlaceholder(text) || text.startsWith(SYNOPSIS_PLACEHOLDER);
}

/** A cleaned value and how many placeholders were thrown away to get it (the summary counts them). */
export interface Cleaned<T> {
  value: T;
  placeholders: number;
}

/** A text field: null when absent (SQL NULL) or a placeholder. */
export function cleanText(
  raw: unknown,
  placeholder: (text: string) => boolean = isPlaceholder,
): Cleaned<string | null> {
  if (raw === null || raw === undefined) return { value: null, placeholders: 0 };
  const text = collapseWhitespace(String(raw));
  return placeholder(text) ? { value: null, placeholders: 1 } : { value: text, placeholders: 0 };
}

/** A `,`/`;` separated list (genres, studios): trimmed, placeholders and empties dropped, first occurrence kept. */
export function cleanList(raw: unknown): Cleaned<string[]> {
  if (raw === null || raw === undefined) return { value: [], placeholders: 0 };
  const text = collapseWhitespace(String(raw));
  const out: string[] = [];
  let placeholders = 0;
  for (const part of text.split(/[,;]/)) {
    const item = part.trim();
    if (item === '') continue;
    if (isPlaceholder(item)) placeholders++;
    else if (!out.includes(item)) out.push(item);
  }
  // A present value that yields nothing (empty, only separators) is the empty placeholder.
  if (out.length === 0 && placeholders === 0) placeholders = 1;
  return { value: out, placeholders };
}

/** The `year` column when it is a non-negative integer (number or digit string), else undefined. */
export function yearFromColumn(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw >= 0 ? raw : undefined;
  if (typeof raw === 'bigint') return raw >= 0n ? Number(raw) : undefined;
  if (typeof raw === 'string' && /^\s*\d+\s*$/.test(raw)) return Number(raw);
  return undefined;
}

/** The 4-digit year inside already-cleaned text such as `Spring 1998`. */
export function yearFromText(text: string | null): number | undefined {
  const match = text === null ? null : YEAR_IN_TEXT.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** Phrase joining: `a`; `a and b`; `a, b, and c`. */
export function joinPhrase(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  if (items.length === 2) return `${items[0]} and ${items[1]}`;
  return `${items.slice(0, -1).join(', ')}, and ${items[items.length - 1]}`;
}
