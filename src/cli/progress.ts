// A progress line on stderr for long-running commands. On a terminal it is one line rewritten in place
// (at most ~10 times a second); when stderr is a file or a pipe it is a plain line every ~2 seconds, so
// logs stay readable.

export interface ProgressCounts {
  filesDone: number;
  filesTotal: number;
  resources: number;
  failures: number;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Override the terminal detection (tests). */
  tty?: boolean;
  /** Suppress all output. */
  quiet?: boolean;
  /** What filesDone/filesTotal count (default "files"). */
  unit?: string;
}

export class ProgressLine {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private readonly unit: string;
  private readonly started = Date.now();
  private lastShown = Date.now();
  private shownOnTty = false;

  constructor(options: ProgressOptions = {}) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? Boolean(this.stream.isTTY);
    this.quiet = options.quiet ?? false;
    this.unit = options.unit ?? 'files';
  }

  /** Seconds since the progress line was created. */
  elapsedSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  update(counts: ProgressCounts): void {
    if (this.quiet) return;
    const now = Date.now();
    const interval = this.tty ? 100 : 2000;
    if (now - this.lastShown < interval) return;
    this.lastShown = now;
    this.show(counts);
  }

  /** Shows the counts now, whatever the time since the last line (e.g. before a long step). */
  now(counts: ProgressCounts): void {
    if (this.quiet) return;
    this.lastShown = Date.now();
    this.show(counts);
  }

  /** Shows the final counts (on a terminal) and leaves the cursor on a fresh line. */
  done(counts: ProgressCounts): void {
    if (this.quiet || !this.tty) return;
    this.show(counts);
    if (this.shownOnTty) this.stream.write('\n');
    this.shownOnTty = false;
  }

  private show(counts: ProgressCounts): void {
    const text = formatProgress(counts, this.elapsedSeconds(), this.unit);
    if (this.tty) {
      this.stream.write(`\r${text}\x1b[K`);
      this.shownOnTty = true;
    } else {
      this.stream.write(`${text}\n`);
    }
  }
}

export function formatProgress(c: ProgressCounts, seconds: number, unit = 'files'): string {
  const rate = seconds > 0 ? Math.round(c.resources / seconds) : 0;
  const failures = c.failures ? `, ${c.failures} failure${c.failures === 1 ? '' : 's'}` : '';
  return `${unit} ${c.filesDone}/${c.filesTotal}, ${c.resources} resources, ${rate} resources/s${failures}`;
}
