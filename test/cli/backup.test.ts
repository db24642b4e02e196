// carebridge backup: a copy of a running SQLite deployment, the record's file and then its audit journal's,
// that opens with --db as it stands, holds everything committed before it began, and whose audit trail
// verifies. And the refusals, each one plain line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lines, runCli } from './cli.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { handleFhirRequest, openRecordStore, UNRESTRICTED } from '../../src/record/index.ts';

/** Creates Patients one after another until stopped; `committed` holds the id of each one the server answered 201 for. */
function keepWriting(t: TestServer): { committed: string[]; stop(): Promise<void> } {
  const committed: string[] = [];
  let stopping = false;
  const running = (async () => {
    for (let i = 0; !stopping; i++) {
      const res = await t.fhir.post('Patient', { resourceType: 'Patient', name: [{ family: `Backup${i}`, given: ['Written'] }] });
      assert.equal(res.status, 201);
      committed.push(res.body.id);
    }
  })();
  return { committed, stop: async () => { stopping = true; await running; } };
}

/** The ids of `ids` that the database cannot read. */
async function unreadable(database: string, ids: string[]): Promise<string[]> {
  const driver = await openRecordStore(database);
  try {
    const missing: string[] = [];
    for (const id of ids) {
      const res = await handleFhirRequest({ base: 'http://localhost/fhir', driver, access: UNRESTRICTED }, { method: 'GET', path: `Patient/${id}`, query: [] }).catch(() => ({ status: 404 }));
      if (res.status !== 200) missing.push(id);
    }
    return missing;
  } finally {
    await driver.close();
  }
}

/** The entry numbers `carebridge backup` printed: the journal copy's head and the record copy's anchor. */
function auditReachPrinted(stdout: string): { head: number; anchored: number } {
  const m = /Audit head: entry (\d+) \(the record's copy anchors entry (\d+)\)/.exec(stdout);
  assert.ok(m, stdout);
  return { head: Number(m[1]), anchored: Number(m[2]) };
}

describe('carebridge backup', () => {
  let t: TestServer;
  let dir: string;
  before(async () => {
    t = await startTestServer('sqlite');
    dir = mkdtempSync(join(tmpdir(), 'carebridge-backup-'));
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies a server that is writing: the copy opens with --db, holds what was committed before it began, and its audit trail verifies', async () => {
    const writer = keepWriting(t);
    try {
      while (writer.committed.length < 50) await new Promise((r) => setTimeout(r, 10));
      const committedBefore = [...writer.committed];
      const out = join(dir, 'running');
      const backup = await runCli(['backup', out, '--db', t.database]);
      assert.equal(backup.code, 0, backup.stderr);
      assert.ok(writer.committed.length > committedBefore.length, 'the server went on writing while the backup ran');

      assert.deepEqual(readdirSync(out).sort(), ['carebridge-audit.db', 'carebridge.db']);
      assert.match(backup.stdout, /carebridge\.db\s+[\d,]+ bytes/);
      assert.match(backup.stdout, /carebridge-audit\.db\s+[\d,]+ bytes/);
      const reach = auditReachPrinted(backup.stdout);
      assert.ok(reach.head >= reach.anchored && reach.anchored > 0, backup.stdout);

      const copy = `sqlite:${join(out, 'carebridge.db')}`;
      assert.deepEqual(await unreadable(copy, committedBefore), []);
      const verify = await runCli(['audit', 'verify', '--db', copy]);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /^Audit trail intact/);
    } finally {
      await writer.stop();
    }
  });

  it('must copy the journal after the record: a journal copied before it is reported as having lost entries', async () => {
    const writer = keepWriting(t);
    try {
      const earlier = await runCli(['backup', join(dir, 'earlier'), '--db', t.database]);
      assert.equal(earlier.code, 0, earlier.stderr);
      await new Promise((r) => setTimeout(r, 1500)); // the anchor moves at most once a second
      const later = await runCli(['backup', join(dir, 'later'), '--db', t.database]);
      assert.equal(later.code, 0, later.stderr);
      assert.ok(auditReachPrinted(later.stdout).anchored > auditReachPrinted(earlier.stdout).head, 'the later record anchors entries the earlier journal lacks (the case this test is about)');

      // The later record with the earlier journal: what copying the journal first would have given.
      const mixed = join(dir, 'journal-first');
      mkdirSync(mixed);
      copyFileSync(join(dir, 'later', 'carebridge.db'), join(mixed, 'carebridge.db'));
      copyFileSync(join(dir, 'earlier', 'carebridge-audit.db'), join(mixed, 'carebridge-audit.db'));
      const verify = await runCli(['audit', 'verify', '--db', `sqlite:${join(mixed, 'carebridge.db')}`]);
      assert.equal(verify.code, 1, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /BROKEN .*entries were removed from the end/);
    } finally {
      await writer.stop();
    }
  });

  it('refuses a directory that already holds the database, and writes nothing into it', async () => {
    const out = join(dir, 'taken');
    assert.equal((await runCli(['backup', out, '--db', t.database])).code, 0);
    const again = await runCli(['backup', out, '--db', t.database]);
    assert.equal(again.code, 1);
    assert.deepEqual(lines(again.stderr), [`carebridge: ${out} already holds a database (carebridge.db, carebridge-audit.db): back up into an empty folder, or move it away.`]);
    assert.deepEqual(readdirSync(out).sort(), ['carebridge-audit.db', 'carebridge.db']);
  });

  it('refuses a database file that does not exist, without making one', async () => {
    const missing = join(dir, 'nowhere', 'gone.db');
    const result = await runCli(['backup', join(dir, 'of-nothing'), '--db', `sqlite:${missing}`]);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), [`carebridge: there is no SQLite database file at ${missing} to back up.`]);
    assert.equal(existsSync(missing), false);
    assert.equal(existsSync(join(dir, 'of-nothing')), false);
  });

  it('refuses an in-memory database', async () => {
    const result = await runCli(['backup', join(dir, 'of-memory'), '--db', 'sqlite::memory:']);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), ['carebridge: an in-memory database has no file to back up.']);
  });

  it('sends PostgreSQL to pg_dump, naming the database without its password', async () => {
    const result = await runCli(['backup', join(dir, 'of-postgres'), '--db', 'postgres://carebridge:s3cret-word@127.0.0.1:1/records']);
    assert.equal(result.code, 1);
    assert.deepEqual(lines(result.stderr), ["carebridge: backup copies SQLite files; postgres://carebridge:***@127.0.0.1:1/records is PostgreSQL: back it up with pg_dump (the database server's own tool)."]);
    assert.doesNotMatch(result.stderr + result.stdout, /s3cret-word/);
  });
});
