/**
 * What Verdandi keeps of a remote command's output. A command may print without end (`yes`, a build in
 * a loop, a `cat` of a disk image): kept whole, 1 GB of output would take gigabytes of the controller's
 * memory per host, then be printed as a "tail", stored in the history and written into the report.
 *
 * A bounded stream keeps only its last `tailBytes` bytes and counts the rest, which it names in one
 * line (`[… 199.8 MB not shown]`) ahead of the tail. With `until`, only the output before that marker is
 * bounded: what follows is Verdandi's own (the fresh probes that ride along with a step) and is kept
 * whole. An unbounded collector keeps everything (probes, facts, file reads).
 */

/** How much of a command's stdout and of its stderr is kept, each (the end of the output). */
export const DEFAULT_TAIL_BYTES = 16 * 1024;

export interface OutputBound {
  /** Bytes kept at the end of the bounded part (default DEFAULT_TAIL_BYTES). */
  tailBytes?: number;
  /** Bound only the output before this marker; the marker and what follows are kept whole. */
  until?: string;
}

/** `1234` → `1.2 KB`: decimal units, as `ls -h --si` and `df -H` show them. */
export function humanBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  // 999.96 KB would print as `1000.0 KB`: that is the next unit.
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** How the line that stands for what a bounded stream left out starts. */
export const OMITTED_PREFIX = '[… ';

/** The line that stands for what a bounded stream left out. */
export function omittedLine(bytes: number): string {
  return `${OMITTED_PREFIX}${humanBytes(bytes)} not shown]`;
}

/**
 * The kept end of an output of which `omitted` bytes before `tail` were left out: the omission line
 * first. Also for an output bounded on the host (`tail -c`), whose size the host printed.
 */
export function keptTail(tail: Buffer, omitted: number): string {
  let bounded = tail;
  let left = omitted;
  if (left > 0) {
    // The tail starts at a line start (so never inside a character cut in two), when it has one.
    const eol = bounded.indexOf(0x0a);
    if (eol >= 0 && eol < bounded.length - 1) {
      left += eol + 1;
      bounded = bounded.subarray(eol + 1);
    }
  }
  return (left > 0 ? `${omittedLine(left)}\n` : '') + bounded.toString('utf8');
}

export class OutputCollector {
  /** The kept end of the bounded part, oldest first. */
  private pieces: Buffer[] = [];
  private kept = 0;
  /** Bytes of the bounded part left out. */
  private dropped = 0;
  /** The marker and everything after it (only with `until`, once it was seen). */
  private after: Buffer[] = [];
  private passed = false;
  private readonly marker?: Buffer;
  private readonly limit: number;

  /** `bound` undefined: everything is kept. */
  constructor(bound?: OutputBound) {
    this.limit = bound ? (bound.tailBytes ?? DEFAULT_TAIL_BYTES) : Number.POSITIVE_INFINITY;
    if (bound?.until) this.marker = Buffer.from(bound.until, 'utf8');
  }

  /** Every byte of output seen so far. */
  get total(): number {
    return this.dropped + this.kept + this.after.reduce((n, b) => n + b.length, 0);
  }

  push(chunk: Buffer): void {
    if (this.passed) {
      this.after.push(chunk);
      return;
    }
    if (this.marker) {
      // The marker may straddle two chunks: look in the kept end of the last one plus this one.
      const overlap = Math.min(this.kept, this.marker.length - 1);
      const window = Buffer.concat([this.lastBytes(overlap), chunk]);
      const at = window.indexOf(this.marker);
      if (at >= 0) {
        this.passed = true;
        const before = at - overlap;
        if (before < 0) this.dropLast(-before);
        else this.keep(chunk.subarray(0, before));
        this.after.push(window.subarray(at));
        return;
      }
    }
    this.keep(chunk);
  }

  /** The kept output: the omission line first when something was left out. */
  text(): string {
    return keptTail(Buffer.concat(this.pieces), this.dropped) + Buffer.concat(this.after).toString('utf8');
  }

  private keep(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.pieces.push(chunk);
    this.kept += chunk.length;
    while (this.kept > this.limit) {
      const first = this.pieces[0];
      const excess = this.kept - this.limit;
      if (first.length <= excess) {
        this.pieces.shift();
        this.kept -= first.length;
        this.dropped += first.length;
      } else {
        // A copy: a slice would keep the whole chunk it came from in memory.
        this.pieces[0] = Buffer.from(first.subarray(excess));
        this.kept -= excess;
        this.dropped += excess;
      }
    }
  }

  private lastBytes(n: number): Buffer {
    const parts: Buffer[] = [];
    let need = n;
    for (let i = this.pieces.length - 1; i >= 0 && need > 0; i--) {
      const piece = this.pieces[i];
      parts.unshift(piece.length <= need ? piece : piece.subarray(piece.length - need));
      need -= Math.min(need, piece.length);
    }
    return Buffer.concat(parts);
  }

  /** Takes back the last `n` kept bytes (the start of the marker, now part of `after`). */
  private dropLast(n: number): void {
    const all = Buffer.concat(this.pieces);
    this.pieces = [all.subarray(0, all.length - n)];
    this.kept -= n;
  }
}
