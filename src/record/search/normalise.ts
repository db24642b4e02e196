// String search is case- and accent-insensitive: values are folded the same way when indexed and when sought.
const COMBINING_MARKS = /[\u0300-\u036f]/g;
const MAX_INDEXED_LENGTH = 512;

export function foldString(value: string): string {
  return value.normalize('NFD').replace(COMBINING_MARKS, '').toLowerCase().slice(0, MAX_INDEXED_LENGTH);
}
