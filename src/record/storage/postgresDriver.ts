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
  // A runaway statement must not hold a pooled connection for minutes, nor a server that went silent (a
  // network dropping packets) hold a request waiting for a connection until the system gives up on it.
  // pg-pool counts a wait for a busy pool's free client in the same timeout: as long as a statement may
  // run, so that heavy load queues rather than fails.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, statement_timeout: 30_000, connectionTimeoutMillis: 30_000 });
  /** A lost or refused connection as DatabaseUnavailable (a 503 to an API client); any other error as it is. */
  const unavailable = (err: unknown) => (isConnectionFailure(err) && postgresUnavailable(err, url, { cause: err })) || err;
  // An idle client that loses its connection emits 'error'; without a listener that would crash the process.
  pool.on('error', () => undefined);
  let writes = 0;
  // A statement outside a transaction that is not a plain SELECT may write (an UPDATE … RETURNING read
  // through get, say): counted when it ends, as a transaction is.
  const counted: Queryable = {
    query: (async (config: pg.QueryConfig) => {
      try {
        return await pool.query(config);
      } catch (err) {
        throw unavailable(err);
      } finally {
        if (!/^\s*select\b/i.test(config.text)) writes++;
      }
    }) as Queryable['query'],
  };
  return {
    dialect: 'postgres',
    ...executor(counted),
    async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
      const client = await pool.connect().catch((err) => {
        throw unavailable(err);
      });
      // A connection lost while the transaction holds its client between statements (the caller's own work
      // in between) is emitted as 'error' on the client, which the pool listens for only on idle clients:
      // unheard, it ended the process (the audit writer's thread, or the server). The next statement fails
      // with the loss instead, and the transaction with it.
      let lost: Error | undefined;
      const onLost = (err: Error) => (lost = err);
      client.on('error', onLost);
      try {
        await client.query('BEGIN');
        const result = await fn(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw unavailable(err);
      } finally {
        writes++;
        client.off('error', onLost);
        // A client whose connection was lost is discarded, not handed to the next caller.
        client.release(lost);
      }
    },
    async exec(script) {
      try {
        await pool.query(script);
      } catch (err) {
        throw unavailable(err);
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
 * Why PostgreSQL at `url` could not be used for a connection, said with its host, port, database and role
 * and never the URL's password: pg's own errors ("connect ECONNREFUSED 127.0.0.1:1", "password
 * authentication failed for user …", "The server does not support SSL connections") say neither what was
 * being connected to nor what to change. Undefined for an error that is not about the connection.
 */
export function postgresUnavailable(err: unknown, url: string, options?: ErrorOptions): DatabaseUnavailable | undefined {
  if (err instanceof DatabaseUnavailable) return err;
  // A host name with several addresses fails with an AggregateError of one error per address.
  const first = (err instanceof AggregateError && err.errors.length ? err.errors[0] : err) as NodeJS.ErrnoException | undefined;
  const server = `the PostgreSQL server at ${serverOf(url)}`;
  const unreachable = UNREACHABLE[first?.code ?? ''] ?? LOST[first?.message ?? ''] ?? lostByServer(first?.code);
  if (unreachable) return new DatabaseUnavailable('reach', server, unreachable, options);
  const tls = tlsRefused(first, url);
  if (tls) return new DatabaseUnavailable('reach', server, tls, options);
  const { role, database } = identityOf(url);
  const refused = refusedByServer(first as { code?: string; message?: string } | undefined, role, database);
  return refused ? new DatabaseUnavailable('open', `database '${database}' on ${server} as role '${role}'`, refused, options) : undefined;
}

/** pg's own errors for a connection lost or never made, which have a message and no code. */
const LOST: Record<string, string> = {
  'Connection terminated unexpectedly': 'the connection was lost',
  'Connection terminated due to connection timeout': 'connecting timed out',
  'timeout exceeded when trying to connect': 'connecting timed out',
  'Client has encountered a connection error and is not queryable': 'the connection was lost',
};

/** The server ending a connection itself (a restart, a failover): SQLSTATE class 08 and the shutdowns of 57P. */
function lostByServer(code: string | undefined): string | undefined {
  if (code === '57P01' || code === '57P02') return 'the server shut the connection down';
  if (code?.startsWith('08')) return 'the connection failed';
  return undefined;
}

/**
 * A failure of the connection rather than of a statement, while running. CONNECT refused (42501) shares
 * its code with a statement's permission denied, so is left to start-up, which tells them apart.
 */
function isConnectionFailure(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code !== '42501' && postgresUnavailable(err, '') !== undefined;
}

/** The server's refusals of a connection (SQLSTATE), and what the operator can do about each. */
function refusedByServer(err: { code?: string; message?: string } | undefined, role: string, database: string): string | undefined {
  switch (err?.code) {
    // PostgreSQL says the same for a role that does not exist, so as not to tell a stranger which do.
    case '28P01': return 'the server refused the password: it is wrong, or there is no such role';
    case '3D000': return 'there is no such database on that server';
    case '42501': return `role '${role}' may not connect to it: GRANT CONNECT ON DATABASE ${quoted(database)} TO ${quoted(role)}`;
    // No pg_hba.conf entry, or a role that may not log in: the server's one line says which.
    case '28000': return err.message;
    case '53300': return 'the server has no connections to spare (too many connections)';
    case '57P03': return 'the server is starting up or shutting down';
    default: return undefined;
  }
}

/** Node's codes for a server certificate it does not trust. */
const UNTRUSTED_CERTIFICATE = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** TLS asked for (sslmode) and not to be had: the server offers none, or a certificate this machine does not trust. */
function tlsRefused(err: NodeJS.ErrnoException | undefined, url: string): string | undefined {
  const sslmode = URL.canParse(url) ? new URL(url).searchParams.get('sslmode') : null;
  const asked = sslmode ? `sslmode=${sslmode}` : 'the URL';
  // pg's error for a server that answers the TLS request with "no" has no code, only this message.
  if (err?.message === 'The server does not support SSL connections') {
    return `TLS was asked for (${asked}) and the server does not offer it`;
  }
  if (err?.code && UNTRUSTED_CERTIFICATE.has(err.code)) {
    return `TLS was asked for (${asked}) and the server's certificate is not trusted here (${err.message}): give its certificate authority's file as sslrootcert=PATH in the URL`;
  }
  return undefined;
}

/** The role and database pg connects as and to: the URL's, else pg's defaults (PGUSER or the login name; a database named as the role). */
function identityOf(url: string): { role: string; database: string } {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  const role = (parsed?.username && decodeURIComponent(parsed.username)) || process.env.PGUSER || process.env.USER || 'postgres';
  const database = (parsed && decodeURIComponent(parsed.pathname.slice(1))) || process.env.PGDATABASE || role;
  return { role, database };
}

/** An identifier as SQL would need it written in a GRANT: bare when it can be, else double-quoted. */
function quoted(identifier: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(identifier) ? identifier : `"${identifier.replace(/"/g, '""')}"`;
}

/**
 * A migration the role was not allowed to make, said with the grant that would allow it (PostgreSQL 15 and
 * later give only the database's owner CREATE on schema public; a managed server's role often owns
 * neither). Asks the server who and where the migration ran as; undefined for any other error.
 */
export async function migrationRefused(err: unknown, driver: SqlDriver, url: string): Promise<DatabaseUnavailable | undefined> {
  const code = (err as { code?: string } | undefined)?.code;
  if (code !== '42501' && code !== '3F000') return undefined;
  const where = await driver.get<{ role: string; database: string; schema: string | null; search_path: string }>(
    'SELECT current_user AS role, current_database() AS database, current_schema() AS schema, current_setting(\'search_path\') AS search_path',
  ).catch(() => undefined);
  if (!where) return undefined;
  const subject = `database '${where.database}' on the PostgreSQL server at ${serverOf(url)} as role '${where.role}'`;
  // 3F000: nothing in search_path names a schema that exists (options=-c search_path=… for one not made yet).
  if (code === '3F000' || !where.schema) {
    return new DatabaseUnavailable('use', subject, `no schema named by its search_path (${where.search_path}) exists: CREATE SCHEMA … AUTHORIZATION ${quoted(where.role)}, or name one that does`);
  }
  return new DatabaseUnavailable('use', subject, `the role may not create tables in schema ${where.schema}: GRANT CREATE ON SCHEMA ${quoted(where.schema)} TO ${quoted(where.role)}, or give it a schema of its own`);
}

/** host:port as pg reads them from the URL (a `host` parameter wins; 5432 unless given). */
function serverOf(url: string): string {
  if (!URL.canParse(url)) return 'its URL';
  const parsed = new URL(url);
  return `${parsed.searchParams.get('host') ?? (parsed.hostname || 'localhost')}:${parsed.port || 5432}`;
}
