// Summarises a .cpuprofile written by `node --cpu-prof` (e.g. a server started with
// BENCH_SERVER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"): self time by source area, the top
// functions by self time, and inclusive time of the functions named on the command line.
//   node --import tsx bench/profileSummary.ts FILE.cpuprofile [functionName …]
import { readFileSync } from 'node:fs';

interface Node { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const [file, ...named] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const selfMs = new Map<number, number>();
profile.samples.forEach((id, i) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000));
const total = [...selfMs.values()].reduce((a, b) => a + b, 0);

function area(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  const src = /\/work\/[^/]+\/(.*)$/.exec(url);
  return src ? src[1] : url.replace(/^node:/, 'node:');
}

const add = (map: Map<string, number>, key: string, ms: number) => map.set(key, (map.get(key) ?? 0) + ms);
const areas = new Map<string, number>();
const functions = new Map<string, number>();
for (const [id, ms] of selfMs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  add(areas, area(url, functionName), ms);
  add(functions, `${functionName || '(anonymous)'} ${area(url, functionName)}:${lineNumber + 1}`, ms);
}

const inclusive = new Map<string, number>();
for (const [id, ms] of selfMs) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const name = byId.get(cur)!.callFrame.functionName;
    if (named.includes(name) && !seen.has(name)) {
      seen.add(name);
      add(inclusive, name, ms);
    }
  }
}

const top = (map: Map<string, number>, n: number) =>
  [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, ms]) => `${(ms / total * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(7)} ms  ${k}`).join('\n');

console.log(`total sampled: ${total.toFixed(0)} ms\n\nself time by area:\n${top(areas, 20)}\n\ntop functions (self):\n${top(functions, 25)}`);
if (named.length) console.log(`\ninclusive:\n${top(inclusive, named.length)}`);
