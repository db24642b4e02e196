// The scheduling priority of each thread of this process, for tests of work moved to background threads.
import { readdirSync, readFileSync } from 'node:fs';

/** Each thread of this process (by task id) and its nice value: Linux only (/proc/self/task/<tid>/stat, field 19). */
export function threadNiceness(): Map<number, number> {
  const nice = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    nice.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return nice;
}

export const THREAD_PRIORITIES = process.platform === 'linux' ? undefined : 'thread priorities are per thread only on Linux';
