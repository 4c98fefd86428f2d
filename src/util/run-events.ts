/**
 * The low-level facts of a run that come from below the engine: the commands the connections send
 * (counted into the run's events, engine/events.ts), and the shape of a site's deploy log entry. An
 * observer that throws never disturbs the run: its error is dropped.
 */

/**
 * One line of a site's deploy log on its host (`<sites_root>/<site>/deploys.log`): what a deploy or a
 * rollback did to the site. The same object is written there and given to the observers.
 */
export interface DeployLogEntry {
  action: 'deploy' | 'rollback';
  site: string;
  release: string;
  /** ISO time of the deploy or rollback. */
  time: string;
  /** `user@machine`. */
  by: string;
  /** `deployed`, `rolled back`, `failed`, `interrupted`. */
  outcome: string;
  /** A deploy: the commit and what was asked for (branch, tag or sha). */
  commit?: string;
  branch?: string;
  /** The step that failed. */
  step?: string;
  /** A rollback: the release it left. */
  from?: string;
}

/**
 * Told of every command sent to a host. The connections (which know nothing of runs) report here; the
 * run's event stream (engine/events.ts) counts them per host and task.
 */
export interface RunObserver {
  /** One command was sent to `host` (one SSH round trip, see Connection.roundTrips). */
  roundTrip?(host: string): void;
  /** A handshake the host accepted but did not finish is tried once more: `message` says why and when. */
  handshakeRetry?(host: string, message: string): void;
}

const observers = new Set<RunObserver>();

/** Registers an observer until the returned function is called. */
export function observeRuns(observer: RunObserver): () => void {
  observers.add(observer);
  return () => observers.delete(observer);
}

/** Calls `fn` for every observer; an observer's error never reaches the run. */
export function notifyObservers(fn: (o: RunObserver) => void): void {
  for (const o of observers) {
    try {
      fn(o);
    } catch {
      /* an observer must not break a run (the history reports its own problems at the end) */
    }
  }
}
