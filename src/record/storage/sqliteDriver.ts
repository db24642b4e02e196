import Database from 'better-sqlite3';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseUnavailable, type Param, type SqlDriver, type SqlExecutor } from './driver.ts';
import { BACKSTOP_PAGES, startWalCheckpointer, type WalCheckpointer } from './walCheckpointer.ts';

type Db = Database.Database;
type Statement = Database.Statement;

/**
 * The writer and reader connections to the file at `path`, made ready. Every command opens its SQLite file
 * here, so a file that cannot be opened is named, with why, in one place for all of them.
 */
function openConnections(path: string): { writer: Db; reader: Db } {
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const writer = new Database(path);
    try {
      writer.pragma('journal_mode = WAL');
      // FULL: a commit is on disk before the response is sent, so nothing acknowledged is lost even on power failure.
      writer.pragma('synchronous = FULL');
      writer.pragma('busy_timeout = 5000');
      writer.pragma('foreign_keys = ON');
      // Group commit puts every transaction in a savepoint, whose undo pages SQLite otherwise spills to a temp
      // file made, grown and deleted per commit: half the server's write syscalls under a busy inbox. They are
      // only needed to roll back a savepoint, never for crash recovery (the WAL is), so memory loses nothing.
      writer.pragma('temp_store = MEMORY');
      const reader = path === ':memory:' ? writer : new Database(path, { readonly: false });
      reader.pragma('busy_timeout = 5000');
      return { writer, reader };
    } catch (err) {
      writer.close();
      throw err;
    }
  } catch (err) {
    const sqliteSays = (err as Error).message.replace(/\s*\n\s*/g, ' ');
    // An in-memory database has no file to ask the operating system about.
    const why = path === ':memory:' ? undefined : whyUnopenable(path);
    throw new DatabaseUnavailable('open', `the SQLite database file '${path}'`, why ?? sqliteSays);
  }
}

/**
 * Why the operating system will not let SQLite open `path` and write beside it, found by asking it the
 * same: SQLite says only "unable to open database file". Undefined when it would, and SQLite's own reason
 * stands ("file is not a database"). A file made by asking is removed again.
 */
function whyUnopenable(path: string): string | undefined {
  const folder = dirname(path);
  const existed = existsSync(path);
  try {
    closeSync(openSync(path, existed ? constants.O_RDWR : constants.O_RDWR | constants.O_CREAT | constants.O_EXCL));
    if (!existed) unlinkSync(path);
  } catch (err) {
    return refusal((err as NodeJS.ErrnoException).code, existed, folder) ?? (err as Error).message;
  }
  try {
    accessSync(folder, constants.W_OK);
  } catch {
    // Its write-ahead log and shared-memory files are made beside it, at the first open.
    return `its folder '${folder}' is not writable, and SQLite keeps its write-ahead log there`;
  }
  return undefined;
}

/** An operating system's refusal to open or make the file, said of the file and its folder. */
function refusal(code: string | undefined, existed: boolean, folder: string): string | undefined {
  switch (code) {
    case 'ENOENT': return existsSync(folder) ? `no file can be made in its folder '${folder}'` : `its folder '${folder}' does not exist and could not be made`;
    case 'EACCES':
    case 'EPERM': return existed ? 'this user may not write to it' : `this user may not make files in its folder '${folder}'`;
    case 'EROFS': return 'it is on a read-only file system';
    case 'ENOTDIR': return 'part of its path is a file, not a folder';
    case 'EISDIR': return 'it is a folder, not a file';
    default: return undefined;
  }
}

/**
 * SQLite (3.53) plans a query with the value of a LIMIT that is a bare parameter, so binding it again
 * re-prepares the statement on every run: ~40 µs for a search that then takes 10 µs. As an expression
 * (`+?`) the limit is only read when the statement runs, and the cached plan is kept.
 */
export function limitsReadAtRunTime(sql: string): string {
  return sql.replace(/\bLIMIT \?/g, 'LIMIT +?');
}

/**
 * better-sqlite3 is synchronous while the record's write path is async (to share code with PostgreSQL).
 * One writer connection holds transactions, serialised by a promise queue so that statements from two
 * requests never interleave inside one transaction; a separate reader connection sees only committed
 * data (WAL snapshot), so reads never observe another request's uncommitted writes.
 *
 * Group commit: transactions that queued up while the writer was busy run one after another inside one
 * SQLite transaction, each in its own savepoint, and share its one COMMIT (one fsync with synchronous=FULL,
 * the cost that bounds a busy server on disk). Each caller still sees exactly its own transaction: one
 * that throws is rolled back to its savepoint alone, and every caller's promise settles only after the
 * shared COMMIT is on disk (or rejects when that COMMIT fails, as its own would have).
 */
export function openSqlite(path: string): SqlDriver {
  const { writer, reader } = openConnections(path);

  const writerStatements = new Map<string, Statement>();
  const readerStatements = new Map<string, Statement>();
  const executor = (db: Db, cache: Map<string, Statement>): SqlExecutor => {
    const prepare = (sql: string) => {
      let st = cache.get(sql);
      if (!st) {
        st = db.prepare(limitsReadAtRunTime(sql));
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
        insertRows(table, columns, rows);
      },
      async insertTables(inserts) {
        for (const { table, columns, rows } of inserts) insertRows(table, columns, rows);
      },
    };
    function insertRows(table: string, columns: readonly string[], rows: Param[][]): void {
      if (!rows.length) return;
      const st = prepare(`INSERT INTO ${table} (${columns.join(',')}) VALUES (${columns.map(() => '?').join(',')})`);
      for (const row of rows) st.run(...row);
    }
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

  const waiting: GroupMember[] = [];
  let groupQueued = false;
  let writes = 0;
  // Checkpoints move to a thread of their own once the database is busy (a test's or a CLI command's few
  // writes do not pay for starting one).
  let checkpointer: WalCheckpointer | undefined;
  const wrote = () => {
    if (++writes !== CHECKPOINT_THREAD_AFTER || path === ':memory:') return;
    writer.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
    checkpointer = startWalCheckpointer(path, () => {
      checkpointer = undefined;
      writer.pragma('wal_autocheckpoint = 1000');
    });
  };
  /**
   * Queues one group turn on the writer; whatever is waiting when the turn comes joins it. The turn is
   * taken after the current round of I/O callbacks (setImmediate): better-sqlite3 blocks the event loop
   * for a whole transaction and its fsync, so requests that arrived meanwhile are all handled in that
   * round, and their transactions join one group instead of each paying for a commit of its own.
   */
  const queueGroup = () => {
    if (groupQueued) return;
    groupQueued = true;
    setImmediate(() => {
      void serial(async () => {
        groupQueued = false;
        const group = waiting.splice(0, MAX_GROUP);
        if (waiting.length) queueGroup();
        try {
          await (group.length === 1 ? commitAlone(writer, writeExec, group[0]) : commitGroup(writer, writeExec, group));
        } finally {
          wrote();
        }
      }).catch(() => undefined); // every member's promise has been settled
    });
  };
  const inGroup = <T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      waiting.push({ fn, resolve: resolve as (value: unknown) => void, reject });
      queueGroup();
    });
  return {
    dialect: 'sqlite',
    ...readExec,
    // A write outside a transaction goes to the writer too, in turn (a one-statement transaction): on the
    // reader connection it would wait for the writer's lock while holding the event loop, so the writer could
    // never finish (a deadlock until busy_timeout), and on the writer outside the queue it would land inside
    // someone's transaction.
    run: (sql, params) => inGroup((tx) => tx.run(sql, params)),
    insertMany: (table, columns, rows) => inGroup((tx) => tx.insertMany(table, columns, rows)),
    insertManyReturning: (table, columns, rows, returning) => inGroup((tx) => tx.insertManyReturning(table, columns, rows, returning)),
    insertTables: (inserts) => inGroup((tx) => tx.insertTables(inserts)),
    transaction: inGroup,
    exec: (script) => serial(async () => {
      try {
        writer.exec(script);
      } finally {
        wrote();
      }
    }),
    writes: () => writes,
    // Absent in memory: there is no file to put beside, and no second connection to keep apart from.
    attachCompanion: path === ':memory:' ? undefined : (name, tables) => serial(async () => {
      if (!/^[a-z][a-z0-9_]*$/.test(name)) throw new Error(`'${name}' cannot name a companion database.`);
      const companion = companionPath(path, name);
      // Only for the move: attached to the writer, every BEGIN IMMEDIATE would take the companion's lock too.
      writer.prepare(`ATTACH DATABASE ? AS ${name}`).run(companion);
      try {
        writer.exec(`PRAGMA ${name}.journal_mode = WAL`);
        writer.exec(`PRAGMA ${name}.synchronous = FULL`);
        claimCompanion(writer, name, path, companion);
        moveIntoCompanion(writer, name, tables);
      } finally {
        writer.exec(`DETACH DATABASE ${name}`);
      }
      const attached = (reader.pragma('database_list') as { name: string }[]).some((d) => d.name === name);
      if (!attached) reader.prepare(`ATTACH DATABASE ? AS ${name}`).run(companion);
      return `sqlite:${companion}`;
    }),
    async close() {
      // Transactions asked for just before close still get their turn.
      while (groupQueued) await new Promise((resolve) => setImmediate(resolve)).then(() => queue);
      await queue;
      await checkpointer?.stop();
      if (reader !== writer) reader.close();
      writer.close();
    },
  };
}

/**
 * Copies the tables (with their indexes) still in the main file into the companion, in one transaction, then
 * drops them from the main file in another: SQLite commits each file of a multi-file transaction on its own
 * in WAL mode, so one transaction could leave the rows in neither file after a crash; two leave them in both,
 * and the next call copies nothing twice (INSERT OR IGNORE on each table's key) and drops them. Each
 * transaction looks for the tables under the write lock: two processes starting together on one file both
 * try the move, and the second must find what the first left, not what was there before it waited.
 */
function moveIntoCompanion(writer: Db, name: string, tables: readonly string[]): void {
  const marks = tables.map(() => '?').join(', ');
  const objectsLeft = () => writer.prepare(`SELECT type, name, sql FROM main.sqlite_master WHERE tbl_name IN (${marks}) AND sql IS NOT NULL ORDER BY type DESC`).all(...tables) as { type: string; name: string; sql: string }[];
  const tablesIn = (objects: { type: string; name: string }[]) => tables.filter((t) => objects.some((o) => o.type === 'table' && o.name === t));
  const inCompanion = (o: { type: string; name: string; sql: string }) => {
    const head = new RegExp(`^CREATE (UNIQUE )?${o.type} "?${o.name}"?`, 'i');
    if (!head.test(o.sql)) throw new Error(`Cannot move ${o.name} into the ${name} database: unexpected definition ${o.sql.slice(0, 80)}`);
    return o.sql.replace(head, (_m, unique = '') => `CREATE ${unique}${o.type.toUpperCase()} IF NOT EXISTS ${name}.${o.name}`);
  };
  const copied = writer.transaction(() => {
    const objects = objectsLeft();
    const present = tablesIn(objects);
    for (const o of objects) writer.exec(inCompanion(o));
    // By name: a companion that has moved on since (a column added by a later migration) still takes the
    // rows of a record file put back from before the move, which the companion already holds.
    for (const t of present) {
      const columns = (writer.prepare(`SELECT name FROM pragma_table_info(?, 'main')`).all(t) as { name: string }[]).map((c) => `"${c.name}"`).join(', ');
      writer.exec(`INSERT OR IGNORE INTO ${name}.${t} (${columns}) SELECT ${columns} FROM main.${t}`);
    }
    return present.length > 0;
  }).immediate();
  if (!copied) return;
  writer.transaction(() => {
    for (const t of tablesIn(objectsLeft()).reverse()) writer.exec(`DROP TABLE main.${t}`);
  }).immediate();
}

/**
 * A companion belongs to the database it was made beside, and says so (`companion_of`, the time that
 * database was created). A record file replaced beside a companion kept from before (a fresh start with the
 * old `-audit.db` left behind, another database restored) would otherwise have that other database's
 * journal taken for its own: the move merges into it, or fails on the first table that no longer matches.
 * Refused instead, with what to do. A companion from before the mark is taken as this database's unless its
 * own migrations predate this database, which its own database's cannot.
 */
function claimCompanion(writer: Db, name: string, path: string, companion: string): void {
  writer.transaction(() => {
    const created = Number((writer.prepare("SELECT applied_ms FROM main.schema_migrations WHERE component = 'record' AND version = 1").get() as { applied_ms: number } | undefined)?.applied_ms);
    if (!Number.isFinite(created)) throw new Error(`${path} has no record schema yet, so the ${name} database beside it cannot be matched to it.`);
    const has = (table: string) => Boolean(writer.prepare(`SELECT 1 FROM ${name}.sqlite_master WHERE type = 'table' AND name = ?`).get(table));
    const refuse = (whose: string) => {
      throw new Error(`${companion} is the ${name} database of another database (${whose}), not of ${path} (created ${new Date(created).toISOString()}): move it away to start this database's own, or put back the database it was made beside.`);
    };
    if (has('companion_of')) {
      const owner = Number((writer.prepare(`SELECT record_created_ms FROM ${name}.companion_of`).get() as { record_created_ms: number }).record_created_ms);
      if (owner !== created) refuse(`one created ${new Date(owner).toISOString()}`);
      return;
    }
    if (has('schema_migrations')) {
      const { first } = writer.prepare(`SELECT MIN(applied_ms) AS first FROM ${name}.schema_migrations`).get() as { first: number | null };
      if (first !== null && Number(first) < created) refuse(`it was begun ${new Date(Number(first)).toISOString()}, before this one was created`);
    }
    writer.exec(`CREATE TABLE ${name}.companion_of (record_created_ms INTEGER NOT NULL)`);
    writer.prepare(`INSERT INTO ${name}.companion_of (record_created_ms) VALUES (?)`).run(created);
  }).immediate();
}

/** `dir/x.db` → `dir/x-<name>.db` (any other file name gets `-<name>.db` appended). */
export function companionPath(path: string, name: string): string {
  return path.endsWith('.db') ? `${path.slice(0, -'.db'.length)}-${name}.db` : `${path}-${name}.db`;
}

interface GroupMember {
  fn: (tx: SqlExecutor) => Promise<unknown>;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Write transactions after which checkpoints move to their own thread (see walCheckpointer.ts). */
const CHECKPOINT_THREAD_AFTER = 200;

/** The most transactions sharing one commit: bounds how long the first of them waits for the last. */
const MAX_GROUP = 64;

async function commitAlone(writer: Db, tx: SqlExecutor, member: GroupMember): Promise<void> {
  try {
    writer.exec('BEGIN IMMEDIATE');
    const result = await member.fn(tx);
    writer.exec('COMMIT');
    member.resolve(result);
  } catch (err) {
    rollBack(writer);
    member.reject(err);
  }
}

/** Ends the transaction, if SQLite has not already; a failing ROLLBACK must not leave its callers waiting. */
function rollBack(writer: Db): void {
  try {
    if (writer.inTransaction) writer.exec('ROLLBACK');
  } catch {
    // The connection is broken; the next BEGIN reports it to whoever comes next.
  }
}

async function commitGroup(writer: Db, tx: SqlExecutor, group: GroupMember[]): Promise<void> {
  let held: Array<{ member: GroupMember; result: unknown }> = [];
  /** The shared transaction is gone (COMMIT failed, or SQLite rolled it all back): so is every held result. */
  const lose = (err: unknown) => {
    rollBack(writer);
    for (const h of held) h.member.reject(err);
    held = [];
  };
  for (const member of group) {
    try {
      if (!writer.inTransaction) writer.exec('BEGIN IMMEDIATE');
      writer.exec('SAVEPOINT group_member');
    } catch (err) {
      lose(err);
      member.reject(err);
      continue;
    }
    try {
      const result = await member.fn(tx);
      writer.exec('RELEASE group_member');
      held.push({ member, result });
    } catch (err) {
      // Some errors (a full disk, an I/O error) make SQLite roll back the whole transaction, not just a statement.
      try {
        if (!writer.inTransaction) throw err;
        writer.exec('ROLLBACK TO group_member');
        writer.exec('RELEASE group_member');
      } catch {
        lose(err);
      }
      member.reject(err);
    }
  }
  if (!writer.inTransaction) return;
  try {
    writer.exec('COMMIT');
  } catch (err) {
    lose(err);
    return;
  }
  for (const h of held) h.member.resolve(h.result);
}
