// Small helpers shared by the validation modules: building issues and describing JSON values in messages.
import type { IssueCode, OutcomeIssue } from '../outcome.ts';

export function issue(code: IssueCode, diagnostics: string, expression?: string): OutcomeIssue {
  return { severity: 'error', code, diagnostics, ...(expression ? { expression: [expression] } : {}) };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** "a number (12)", "an object", "null", … */
export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `${typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : typeof v === 'string' ? 'a string' : typeof v} (${JSON.stringify(v)})`;
}

/** Strings quoted ('abc', cut short when long), anything else as jsonType. */
export function describe(v: unknown): string {
  if (typeof v !== 'string') return jsonType(v);
  return v.length > 80 ? `'${v.slice(0, 60)}…' (${v.length} characters)` : `'${v}'`;
}

/** The JSON kind of a value in the words of JavaScript's typeof, telling arrays and null apart. */
export function jsKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}
