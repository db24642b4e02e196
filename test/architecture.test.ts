// The layout's two rules, checked on the source itself so a later change cannot quietly break them: a
// capability (a folder under src/) uses another only through that one's index.ts, and the record core
// uses no other capability at all (it knows nothing about workflows, access rules or messaging).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const SRC = new URL('../src/', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []);
}

/** The capability a path under src/ belongs to; undefined for the files at src/'s top (server, config). */
function capabilityOf(pathInSrc: string): string | undefined {
  const parts = pathInSrc.split('/');
  return parts.length > 1 ? parts[0] : undefined;
}

interface Use { file: string; target: string; from?: string; to?: string }

/** Every relative import (static, re-export or dynamic) of every source file, resolved against src/. */
function uses(): Use[] {
  const found: Use[] = [];
  for (const path of sourceFiles(SRC)) {
    const file = relative(SRC, path);
    const text = readFileSync(path, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
      const target = normalize(join(dirname(file), m[1]));
      found.push({ file, target, from: capabilityOf(file), to: capabilityOf(target) });
    }
  }
  return found;
}

describe('the source layout', () => {
  const all = uses();

  it('finds the imports it checks (the scan itself works)', () => {
    assert.ok(all.some((u) => u.from === 'discharge' && u.target === 'record/index.ts'), 'discharge uses the record through its index.ts');
  });

  it('lets a capability use another only through its index.ts', () => {
    const across = all.filter((u) => u.from && u.to && u.from !== u.to && u.target !== `${u.to}/index.ts`);
    assert.deepEqual(across.map((u) => `${u.file} imports ${u.target}`), []);
  });

  it('keeps the record core free of every other capability', () => {
    const outside = all.filter((u) => u.from === 'record' && u.to !== 'record');
    assert.deepEqual(outside.map((u) => `${u.file} imports ${u.target}`), []);
  });
});
