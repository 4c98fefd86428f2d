/**
 * What a run of tasks (`provision`, `run`) holds while it works on hosts, opened and closed in one
 * place: the connection pool (`--forks` connections at most), the reader of other hosts' values, the
 * run's outputs (terminal, --json), the walker, and the files fetched on the controller. The command
 * plans with the walker and walks its hosts with `work`; `close` releases all of it, whatever happened.
 */
import type { InventoryHost } from '../inventory/types.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { ConnectionPool } from './connection-pool.js';
import type { RunContext } from './context.js';
import { ControllerDownloads } from './downloads.js';
import { runOutputs } from './outputs.js';
import { PeerReader } from './peer-read.js';
import type { PendingLedger } from './pending.js';
import type { HostPlan } from './plan.js';
import { type RunOptions, runUnits } from './run-plan.js';
import { type HostWork, Walker, type WorkResult } from './walker.js';

export interface TaskRun {
  /** Hosts worked on at once (`--forks`, default DEFAULT_FORKS). */
  forks: number;
  /** The run's connections: `warm` them while the roles load. */
  conns: ConnectionPool;
  walker: Walker;
  /** The work of one host: its planned units, with the run's peers and downloads. */
  work(pending: PendingLedger): (plan: HostPlan, host: HostWork) => Promise<WorkResult<undefined>>;
  /** Removes the downloads, closes the connections (the walker's and the peers') and the outputs. */
  close(): Promise<void>;
}

/**
 * `warm`: hosts whose SSH handshakes start at once, overlapping the outputs' start and the loading of
 * the roles (connecting changes nothing on a host).
 */
export async function openTaskRun(
  ctx: RunContext,
  command: 'provision' | 'run',
  o: RunOptions,
  warm: InventoryHost[] = [],
): Promise<TaskRun> {
  const forks = o.forks ?? DEFAULT_FORKS;
  const conns = new ConnectionPool(ctx.connectOptions, forks);
  conns.warm(warm, ctx.vars);
  // Steps that need a value from another host (a worker's swarm join token) read it through these.
  const peers = new PeerReader(ctx.inventory.hosts, ctx.vars, ctx.connectOptions);
  const events = await runOutputs({ json: !!o.json, verbose: !!o.verbose, check: !!o.check, recap: true });
  const walker = new Walker(
    {
      command,
      env: ctx.env,
      check: !!o.check,
      events,
      conns,
      hostVars: ctx.vars,
      forks,
      onInterrupt: 'finish',
      peers,
    },
    ctx.hosts.map((h) => h.name),
  );
  // Files fetched on the controller for the steps of this run, each once, removed when it ends.
  const downloads = new ControllerDownloads();
  return {
    forks,
    conns,
    walker,
    work: (pending) => runUnits({ ...o, peers, pending, downloads }),
    close: async () => {
      downloads.close();
      await walker.close();
      await peers.closeAll();
      events.close();
    },
  };
}
