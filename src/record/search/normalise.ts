// String search is case- and accent-insensitive: values are folded the same way when indexed and when sought.
const COMBINING_MARKS = /[\u0300-\u036f]/g;
const MAX_INDEXED_LENGTH = 512;

/** Letters that are not a base letter plus a combining mark, so NFD alone does not fold them. */
const LETTERS: Record<string, string> = { ø: 'o', ł: 'l', đ: 'd', ð: 'd', þ: 'th', ß: 'ss', æ: 'ae', œ: 'oe', ı: 'i', ħ: 'h', ŧ: 't' };
const SPECIAL = new RegExp(`[${Object.keys(LETTERS).join('')}]`, 'g');

export function foldString(value: string): string {
  return value.normalize('NFD').replace(COMBINING_MARKS, '').toLowerCase().replace(SPECIAL, (c) => LETTERS[c]).slice(0, MAX_INDEXED_LENGTH);
}

/** Greater than any string that starts with a given prefix: the top of the code point range. */
export const AFTER_PREFIX = '\u{10FFFF}';
