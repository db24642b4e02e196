// The two storage engines differ only below this line: SQL text is shared, and each driver adapts
// placeholders, connection handling and bulk inserts to its database.

export type Row = Record<string, unknown>;
export type Param = string | number | bigint | null;

export interface SqlExecutor {
  all<T = Row>(sql: string, params?: Param[]): Promise<T[]>;
  get<T = Row>(sql: string, params?: Param[]): Promise<T | undefined>;
  run(sql: string, params?: Param[]): Promise<number>;
  /** Inserts many rows into one table; each row's values in `columns` order. */
  insertMany(table: string, columns: readonly string[], rows: Param[][]): Promise<void>;
  /** Inserts many rows and returns their `returning` columns (in no promised order). */
  insertManyReturning<T = Row>(table: string, columns: readonly string[], rows: Param[][], returning: string): Promise<T[]>;
  /**
   * Inserts rows into several tables (those without rows are skipped): on PostgreSQL in one statement, one
   * round trip for what a write adds to its history, indexes and outbox.
   */
  insertTables(inserts: readonly TableRows[]): Promise<void>;
}

export interface TableRows { table: string; columns: readonly string[]; rows: Param[][] }

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  /** Runs fn in one database transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs each statement of a schema script (used by migrations). */
  exec(script: string): Promise<void>;
  /**
   * SQLite file databases only: keeps `tables` in a companion file beside the record's (`dir/x.db` →
   * `dir/x-<name>.db`), for a capability with heavy writes of its own, whose commits and checkpoints must
   * never hold the record's write lock nor grow its WAL. Those of `tables` still in the record's file are
   * moved there first, whole (copied, then dropped: a move cut short is finished by the next call, never
   * losing or doubling a row). The companion is attached to the reading connection as schema `name`, so
   * reads find the tables by their plain names; writes to them go through a connection of their own to the
   * location this resolves to (`sqlite:` + path). Calling it again is harmless.
   */
  attachCompanion?(name: string, tables: readonly string[]): Promise<string>;
  /**
   * How many writes this driver has finished (a transaction committed or rolled back, or a statement that
   * may write): a decision taken from reads made while this number stayed the same is still current, as
   * far as this process's own writes go. Other processes' writes (another node on PostgreSQL) are not seen.
   */
  writes(): number;
  close(): Promise<void>;
}

/**
 * The database could not be opened, reached or used, said in the operator's words: which file or server, and
 * why. The drivers' own errors name neither ("unable to open database file", "connect ECONNREFUSED").
 * Never holds a password.
 */
export class DatabaseUnavailable extends Error {
  constructor(readonly action: 'open' | 'reach' | 'use', readonly subject: string, readonly reason: string, options?: ErrorOptions) {
    super(`cannot ${action} ${subject} (${reason})`, options);
    this.name = 'DatabaseUnavailable';
  }

  /** The message with the setting that named the database, for a command line that has one to correct. */
  givenBy(setting: string | undefined): string {
    return `cannot ${this.action} ${this.subject}${setting ? ` given by ${setting}` : ''} (${this.reason}).`;
  }
}
