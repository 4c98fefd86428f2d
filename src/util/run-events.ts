/**
 * What happens during a run, for whoever wants to keep it (the run history): the output classes
 * (the engine's Reporter, deploy's DeployOutput) tell every registered observer what they print, with
 * the host it is about. Observers are registered by the CLI layer; the engine knows nothing of them.
 * An observer that throws never disturbs the run: its error is dropped.
 */
export type ObservedStatus = 'ok' | 'changed' | 'failed' | 'skipped';

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

export interface RunObserver {
  /** The run of `host` starts (its first task's time counts from here). */
  hostStarted?(host: string): void;
  /** A task (or a deploy step) of `host` finished with this status; `detail` is the changed reason or error. */
  task?(host: string, label: string, status: ObservedStatus, detail?: string): void;
  /** A unified diff of a file on `host` (already redacted). */
  diff?(host: string, text: string): void;
  /** The command, exit code and output of the failure just reported (follows its task line). */
  failure?(text: string): void;
  unreachable?(host: string, reason: string): void;
  /** The host's run was stopped by Ctrl-C / SIGTERM. */
  interrupted?(host: string, detail: string): void;
  /**
   * One command was sent to `host` (one SSH round trip, see Connection.roundTrips): the history counts
   * them per task, as it times them, from the host's previous task to this one.
   */
  roundTrip?(host: string): void;
  /** A deploy or rollback wrote this entry into the site's deploy log on `host` (or tried to). */
  deployLogged?(host: string, entry: DeployLogEntry): void;
  /** The run is over: per host, the SSH round trips it cost. */
  finished?(summary: { check: boolean; roundTrips: Record<string, number> }): void;
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
