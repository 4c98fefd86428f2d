/**
 * Which probe results the run loop may still trust, and which tasks to probe next.
 *
 * A probe result is only true until the next change: every result is stamped with the number of steps
 * applied when it was taken, and a result older than the last step is never used. Re-probing every
 * remaining task after each change would be correct too, but costs n²: 300 changed files meant 45,000
 * probes. So probes are refreshed in windows:
 *
 * - the first round trip probes every task (a run where nothing changes costs one round trip);
 * - the last step of a changed task carries a fresh probe of the next `RIDE_ALONG` tasks;
 * - when the walk reaches a task whose probe is older than the last change, one round trip probes a
 *   window starting there, twice as large as the previous one while nothing changes.
 *
 * Each change costs at most `RIDE_ALONG` probes, and each window is at most twice the tasks walked
 * since the last one, so the probe work is linear in tasks plus changes, and the extra round trips
 * after a change are logarithmic in the tasks that follow it.
 */
import type { ProbeResult } from './types.js';

/** How many following tasks are re-probed in the same round trip as a change. */
export const RIDE_ALONG = 8;

export class ProbeWindows {
  private readonly results = new Map<number, { result: ProbeResult; generation: number }>();
  /** Steps applied so far: a result taken before the last one is stale. */
  private generation = 0;
  private window = RIDE_ALONG;

  /** `probed`: the indexes of the tasks that have a probe (tasks whose `when` is true), ascending. */
  constructor(private readonly probed: number[]) {}

  /** Every probed task: the first round trip. */
  all(): number[] {
    return [...this.probed];
  }

  /** A step was applied (or failed half-way): every result taken so far may be wrong now. */
  stepApplied(): void {
    this.generation++;
    this.window = RIDE_ALONG;
  }

  /** The tasks whose fresh probe travels with a change: the next `RIDE_ALONG` from `from` on. */
  rideAlong(from: number): number[] {
    return this.from(from, RIDE_ALONG);
  }

  /** The next window to probe, starting at the stale task `from`: twice the previous one. */
  nextWindow(from: number): number[] {
    this.window *= 2;
    return this.from(from, this.window);
  }

  /** Records results taken now (after the steps applied so far). */
  record(results: Map<string, ProbeResult>, ids: number[]): void {
    for (const id of ids) {
      const result = results.get(String(id));
      if (result) this.results.set(id, { result, generation: this.generation });
    }
  }

  /** The result of task `index` when no step was applied since it was taken. */
  fresh(index: number): ProbeResult | undefined {
    const entry = this.results.get(index);
    return entry && entry.generation === this.generation ? entry.result : undefined;
  }

  /** The last result of task `index`, fresh or not (continuation.ts checks it on the host). */
  latest(index: number): ProbeResult | undefined {
    return this.results.get(index)?.result;
  }

  /** Task `index` was probed, but before the last step: probing it again may tell. */
  stale(index: number): boolean {
    const entry = this.results.get(index);
    return !!entry && entry.generation !== this.generation;
  }

  private from(start: number, count: number): number[] {
    // Binary search for the first probed task at or after `start`: a scan would make a run of n
    // changes cost n² here.
    let low = 0;
    let high = this.probed.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.probed[middle] < start) low = middle + 1;
      else high = middle;
    }
    return this.probed.slice(low, low + count);
  }
}
