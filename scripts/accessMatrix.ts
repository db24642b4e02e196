// Prints the role → permission matrix (src/access/permissions.ts) as the Markdown table in docs/access.md.
//   node --import tsx scripts/accessMatrix.ts
import { GROUPS, MATRIX } from '../src/access/permissions.ts';

export function matrixTable(): string {
  const cell = (entries: readonly string[]) => (entries.length ? entries.join(', ') : '–');
  const rows = Object.entries(MATRIX).map(([role, p]) => `| ${role} | ${cell(p.read)} | ${cell(p.write)} | ${cell(p.delete)} |`);
  const groups = Object.entries(GROUPS).map(([g, types]) => `| ${g} | ${types.join(', ')} |`);
  return [
    '| role | read, search, history | create, update | delete |',
    '|---|---|---|---|',
    ...rows,
    '',
    '| group | resource types |',
    '|---|---|',
    ...groups,
  ].join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(matrixTable());
