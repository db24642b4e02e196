// What the access check costs a search per row, by how many people the caller may see: the condition
// src/record/search/visibility.ts adds to every statement of a signed-in person's search (each row matched,
// and each row counted, must be in the compartment of someone in the caller's scope). A record database of
// `--rows` Observations spread over 5,000 people; each statement reads 40 of them by row id, with the check
// for a scope listing 8 (a small care home), 40 or 500 people (a ward, a hospital's list) and without it.
// Median µs per statement over `--runs` runs of 2,000 statements.
//
//   node --import tsx bench/scopeCheck.ts [--rows 200000] [--runs 7]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openRecordStore } from '../src/record/index.ts';
import { visibleRowOfType } from '../src/record/search/visibility.ts';

const { values: args } = parseArgs({ options: { rows: { type: 'string', default: '200000' }, runs: { type: 'string', default: '7' } } });
const ROWS = Number(args.rows);
const RUNS = Number(args.runs);
const PEOPLE = 5000;
const STATEMENTS = 2000;
const person = (i: number) => `person-${i % PEOPLE}`;

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'carebridge-scope-check-'));
try {
  const driver = await openRecordStore(`sqlite:${join(dir, 'carebridge.db')}`, { warmUp: false });
  await driver.transaction(async (tx) => {
    for (let i = 1; i <= ROWS; i++) {
      await tx.run("INSERT INTO resources (rid, type, id, version_id, last_updated_ms, deleted, patient_id, content) VALUES (?, 'Observation', ?, 1, 0, 0, ?, '{}')", [i, `o${i}`, person(i)]);
      await tx.run("INSERT INTO compartment (rid, patient_id, type) VALUES (?, ?, 'Observation')", [i, person(i)]);
    }
  });
  await driver.exec('ANALYZE');
  // 40 rows of the people listed first (so the check passes, as it does for the caller's own searches).
  if (ROWS < 2 * PEOPLE) throw new Error(`--rows must be at least ${2 * PEOPLE}`);
  const rids = Array.from({ length: 40 }, (_, k) => PEOPLE * (1 + Math.floor((k * (ROWS / PEOPLE - 2)) / 40)) + (k % 8));
  const page = `SELECT r.rid FROM resources r WHERE r.rid IN (${rids.join(', ')})`;
  console.log(`Access check per search statement (40 rows read by row id, ${ROWS.toLocaleString('en-GB')} rows in the table, median of ${RUNS} runs of ${STATEMENTS} statements)`);
  console.log('people listed   µs/statement   of which the check   per row');
  const time = async (sql: string, params: unknown[]) => {
    const runs: number[] = [];
    for (let run = 0; run < RUNS + 1; run++) {
      const t0 = performance.now();
      for (let i = 0; i < STATEMENTS; i++) await driver.all(sql, params as never[]);
      if (run > 0) runs.push(((performance.now() - t0) * 1000) / STATEMENTS);
    }
    return median(runs);
  };
  const bare = await time(page, []);
  console.log(`${'none'.padEnd(15)} ${bare.toFixed(1).padStart(12)}`);
  for (const n of [8, 40, 500]) {
    const visible = visibleRowOfType('r', 'Observation', { patientIds: Array.from({ length: n }, (_, i) => person(i)), via: [] })!;
    const found = await driver.all(`${page} AND ${visible.text}`, visible.params);
    if (found.length !== 40) throw new Error(`the check let ${found.length} of 40 rows through; expected all`);
    const us = await time(`${page} AND ${visible.text}`, visible.params);
    console.log(`${String(n).padEnd(15)} ${us.toFixed(1).padStart(12)} ${(us - bare).toFixed(1).padStart(20)} ${((us - bare) / 40).toFixed(2).padStart(9)}`);
  }
  await driver.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
