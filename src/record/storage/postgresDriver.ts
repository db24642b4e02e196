import pg from 'pg';
import { DatabaseUnavailable, type Param, type SqlDriver, type SqlExecutor, type TableRows } from './driver.ts';

// int8 (bigint) columns hold epoch milliseconds and row ids, all well inside a double's exact range.
pg.types.setTypeParser(20, (v) => Number(v));

/**
 * Rewrites the shared SQL's `?` placeholders to PostgreSQL's `$n` (our SQL never has `?` in literals), and
 * drops SQLite's `INDEXED BY` (an index SQLite's planner must use; PostgreSQL's, which has statistics,
 * chooses for itself).
 */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/ INDEXED BY \w+/g, '').replace(/\?/g, () => `$${++n}`);
}

const MAX_PARAMS = 60000;

type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

function executor(db: Queryable): SqlExecutor {
  const query = async (sql: string, params: Param[] = []) =>
    db.query({ text: numbered(sql), values: params as unknown[] });
  return {
    async all<T>(sql: string, params?: Param[]) {
      return (await query(sql, params)).rows as T[];
    },
    async get<T>(sql: string, params?: Param[]) {
      return (await query(sql, params)).rows[0] as T | undefined;
    },
    async run(sql: string, params?: Param[]) {
      return (await query(sql, params)).rowCount ?? 0;
    },
    async insertMany(table, columns, rows) {
      await insertChunks(db, table, columns, rows, '');
    },
    async insertManyReturning<T>(table: string, columns: readonly string[], rows: Param[][], returning: string) {
      return (await insertChunks(db, table, columns, rows, returning)) as T[];
    },
    async insertTables(inserts) {
      await insertTables(db, inserts);
    },
  };
}

/**
 * Several tables' rows in one statement, each INSERT but the last in a WITH clause (PostgreSQL runs them
 * all, on one snapshot); a set of rows too large for one statement's parameters goes in chunks of its own.
 */
async function insertTables(db: Queryable, inserts: readonly TableRows[]): Promise<void> {
  const withRows = inserts.filter((i) => i.rows.length);
  const total = withRows.reduce((n, i) => n + i.rows.length * i.columns.length, 0);
  if (total > MAX_PARAMS) {
    for (const i of withRows) await insertChunks(db, i.table, i.columns, i.rows, '');
    return;
  }
  if (!withRows.length) return;
  const values: Param[] = [];
  const statements = withRows.map(({ table, columns, rows }) => {
    const tuples = rows.map((row) => {
      const start = values.length;
      values.push(...row);
      return `(${row.map((_, k) => `$${start + k + 1}`).join(',')})`;
    });
    return `INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')}`;
  });
  const last = statements.pop()!;
  const text = statements.length ? `WITH ${statements.map((st, k) => `w${k} AS (${st})`).join(', ')} ${last}` : last;
  await db.query({ text, values: values as unknown[] });
}

/** Multi-row INSERTs, one round trip per chunk (RETURNING rows are not promised in input order). */
async function insertChunks(db: Queryable, table: string, columns: readonly string[], rows: Param[][], returning: string): Promise<unknown[]> {
  const out: unknown[] = [];
  const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
  for (let start = 0; start < rows.length; start += perStatement) {
    const chunk = rows.slice(start, start + perStatement);
    const values: Param[] = [];
    let n = 0;
    const tuples = chunk.map((row) => {
      values.push(...row);
      return `(${row.map(() => `$${++n}`).join(',')})`;
    });
    const text = `INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')}${returning ? ` RETURNING ${returning}` : ''}`;
    const result = await db.query({ text, values: values as unknown[] });
    if (returning) out.push(...result.rows);
  }
  return out;
}

export function openPostgres(url: string, poolSize = 10): SqlDriver {
  // A runaway statement must not hold a pooled connection for minutes.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, statement_timeout: 30_000 });
  // An idle client that loses its connection emits 'error'; without a listener that would crash the process.
  pool.on('error', () => undefined);
  let writes = 0;
  // A statement outside a transaction that is not a plain SELECT may write (an UPDATE … RETURNING read
  // through get, say): counted when it ends, as a transaction is.
  const counted: Queryable = {
    query: (async (config: pg.QueryConfig) => {
      try {
        return await pool.query(config);
      } finally {
        if (!/^\s*select\b/i.test(config.text)) writes++;
      }
    }) as Queryable['query'],
  };
  return {
    dialect: 'postgres',
    ...executor(counted),
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        writes++;
        client.release();
      }
    },
    async exec(script) {
      try {
        await pool.query(script);
      } finally {
        writes++;
      }
    },
    writes: () => writes,
    async close() {
      await pool.end();
    },
  };
}

/** Failures of the connection itself, not of a statement, in the operator's words. */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'its host name could not be looked up',
  ETIMEDOUT: 'connecting timed out',
  EHOSTUNREACH: 'no route to its host',
  ENETUNREACH: 'no route to its network',
  ECONNRESET: 'the connection was reset',
};

/**
 * The server at `url` could not be reached, said with its host and port and never the URL's password:
 * pg's own error ("connect ECONNREFUSED 127.0.0.1:1") says neither what was being connected to nor
 * where that came from. Undefined for any other error (a wrong password, a missing database).
 */
export function unreachableServer(err: unknown, url: string): DatabaseUnavailable | undefined {
  // A host name with several addresses fails with an AggregateError of one error per address.
  const first = err instanceof AggregateError && err.errors.length ? err.errors[0] : err;
  const reason = UNREACHABLE[(first as NodeJS.ErrnoException)?.code ?? ''];
  return reason ? new DatabaseUnavailable('reach', `the PostgreSQL server at ${serverOf(url)}`, reason) : undefined;
}

/** host:port as pg reads them from the URL (a `host` parameter wins; 5432 unless given). */
function serverOf(url: string): string {
  if (!URL.canParse(url)) return 'its URL';
  const parsed = new URL(url);
  return `${parsed.searchParams.get('host') ?? (parsed.hostname || 'localhost')}:${parsed.port || 5432}`;
}
