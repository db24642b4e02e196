import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Param, SqlDriver, SqlExecutor } from './driver.ts';

type Db = Database.Database;
type Statement = Database.Statement;

/**
 * better-sqlite3 is synchronous while the record's write path is async (to share code with PostgreSQL).
 * One writer connection holds transactions, serialised by a promise queue so that statements from two
 * requests never interleave inside one transaction; a separate reader connection sees only committed
 * data (WAL snapshot), so reads never observe another request's uncommitted writes.
 */
export function openSqlite(path: string): SqlDriver {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const writer = new Database(path);
  writer.pragma('journal_mode = WAL');
  // FULL: a commit is on disk before the response is sent, so nothing acknowledged is lost even on power failure.
  writer.pragma('synchronous = FULL');
  writer.pragma('busy_timeout = 5000');
  writer.pragma('foreign_keys = ON');
  const reader = path === ':memory:' ? writer : new Database(path, { readonly: false });
  reader.pragma('busy_timeout = 5000');

  const writerStatements = new Map<string, Statement>();
  const readerStatements = new Map<string, Statement>();
  const executor = (db: Db, cache: Map<string, Statement>): SqlExecutor => {
    const prepare = (sql: string) => {
      let st = cache.get(sql);
      if (!st) {
        st = db.prepare(sql);
        cache.set(sql, st);
      }
      return st;
    };
    return {
      async all<T>(sql: string, params: Param[] = []) {
        return prepare(sql).all(...params) as T[];
      },
      async get<T>(sql: string, params: Param[] = []) {
        return prepare(sql).get(...params) as T | undefined;
      },
      async run(sql: string, params: Param[] = []) {
        return prepare(sql).run(...params).changes;
      },
      async insertManyReturning<T>(table: string, columns: readonly string[], rows: Param[][], returning: string) {
        const st = prepare(`INSERT INTO ${table} (${columns.join(',')}) VALUES (${columns.map(() => '?').join(',')}) RETURNING ${returning}`);
        return rows.map((row) => st.get(...row) as T);
      },
      async insertMany(table, columns, rows) {
        if (!rows.length) return;
        const st = prepare(`INSERT INTO ${table} (${columns.join(',')}) VALUES (${columns.map(() => '?').join(',')})`);
        for (const row of rows) st.run(...row);
      },
    };
  };
  const writeExec = executor(writer, writerStatements);
  const readExec = executor(reader, readerStatements);

  let queue: Promise<unknown> = Promise.resolve();
  /** Runs work on the writer connection after every transaction queued before it has ended. */
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work);
    queue = next.catch(() => undefined);
    return next;
  };
  return {
    dialect: 'sqlite',
    ...readExec,
    // A write outside a transaction goes to the writer too, in turn: on the reader connection it would wait
    // for the writer's lock while holding the event loop, so the writer could never finish (a deadlock
    // until busy_timeout), and on the writer outside the queue it would land inside someone's transaction.
    run: (sql, params) => serial(() => writeExec.run(sql, params)),
    insertMany: (table, columns, rows) => serial(() => writeExec.insertMany(table, columns, rows)),
    insertManyReturning: (table, columns, rows, returning) => serial(() => writeExec.insertManyReturning(table, columns, rows, returning)),
    transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      return serial(async () => {
        writer.exec('BEGIN IMMEDIATE');
        try {
          const result = await fn(writeExec);
          writer.exec('COMMIT');
          return result;
        } catch (err) {
          if (writer.inTransaction) writer.exec('ROLLBACK');
          throw err;
        }
      });
    },
    exec: (script) => serial(async () => {
      writer.exec(script);
    }),
    async close() {
      await queue;
      if (reader !== writer) reader.close();
      writer.close();
    },
  };
}
