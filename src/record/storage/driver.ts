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
}

export interface SqlDriver extends SqlExecutor {
  readonly dialect: 'sqlite' | 'postgres';
  /** Runs fn in one database transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Runs each statement of a schema script (used by migrations). */
  exec(script: string): Promise<void>;
  close(): Promise<void>;
}
