// An online copy of a SQLite database and its companions (the audit journal: see attachCompanion), for
// `carebridge backup`. Copying the files themselves while a server writes can tear them: in WAL mode the
// -wal file holds committed pages not yet in the main file. SQLite's backup API reads through a connection,
// WAL included, so each copy is one committed state of its file.
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { companionPath } from './sqliteDriver.ts';

export interface CopiedFile { source: string; copy: string; bytes: number }

/** What SQLite keeps beside a database file while it is open, or after a crash. */
const SIDE_FILES = ['', '-wal', '-shm', '-journal'];

/**
 * Copies the database file at `path` into `directory` under its own name, then each of its companions
 * (`companions`: their names, as given to attachCompanion) that exists, so the copies open together as the
 * originals do. The main file first: it anchors what its companions hold (the audit chain's head), and a
 * companion copied after it holds at least what that anchor names; copied before it, entries committed in
 * between would be named by the copy's anchor and missing from its companion.
 *
 * The copies are written under a `.partial` name and renamed when all are written, the main file last, so
 * a directory holding the main file holds a finished backup. Throws a one-line message, having written
 * nothing, when there is nothing to copy or the directory already holds one of these databases.
 */
export async function backupSqliteFiles(path: string, directory: string, companions: readonly string[]): Promise<CopiedFile[]> {
  if (path === ':memory:') throw new Error('an in-memory database has no file to back up.');
  if (!existsSync(path) || !statSync(path).isFile()) throw new Error(`there is no SQLite database file at ${path} to back up.`);
  const sources = [path, ...companions.map((name) => companionPath(path, name)).filter((p) => existsSync(p))];
  const copies = sources.map((source) => join(directory, basename(source)));
  if (sources.some((source, i) => resolve(source) === resolve(copies[i]))) throw new Error(`${directory} is the database's own folder: back it up into another.`);
  refuseOccupied(directory, copies);
  mkdirSync(directory, { recursive: true });
  const copied: CopiedFile[] = [];
  try {
    for (const [i, source] of sources.entries()) {
      await copyDatabase(source, `${copies[i]}.partial`);
      copied.push({ source, copy: copies[i], bytes: statSync(`${copies[i]}.partial`).size });
    }
    for (const { copy } of [...copied].reverse()) renameSync(`${copy}.partial`, copy);
  } catch (err) {
    for (const copy of copies) rmSync(`${copy}.partial`, { force: true });
    throw err;
  }
  return copied;
}

/** Refuses a directory that already holds a database by one of the copies' names, or its side files. */
function refuseOccupied(directory: string, copies: string[]): void {
  if (!existsSync(directory)) return;
  if (!statSync(directory).isDirectory()) throw new Error(`${directory} is a file, not a folder.`);
  const present = new Set(readdirSync(directory));
  const taken = copies.flatMap((copy) => SIDE_FILES.map((side) => basename(copy) + side)).filter((name) => present.has(name));
  if (taken.length) throw new Error(`${directory} already holds a database (${taken.join(', ')}): back up into an empty folder, or move it away.`);
}

/**
 * One committed state of the database at `source`, written to `destination` (a leftover there is replaced).
 * All pages in one step: the step reads one snapshot, whereas a copy in steps starts again whenever another
 * connection commits between two of them, which under a busy server could be forever. A reader holds no
 * lock a WAL writer waits for, so the server goes on committing meanwhile.
 */
async function copyDatabase(source: string, destination: string): Promise<void> {
  rmSync(destination, { force: true });
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    await db.backup(destination, { progress: () => ALL_PAGES });
  } finally {
    db.close();
  }
}

/** The largest step better-sqlite3 takes: every page. */
const ALL_PAGES = 0x7fffffff;
