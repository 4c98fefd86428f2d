/**
 * `verdandi provision <env>`: every host gets the roles of its groups. Everything is loaded and every
 * unit of every host evaluated before the first command runs on a host (a user error changes nothing).
 */
import { ConnectionPool } from '../engine/connection-pool.js';
import { loadRunContext } from '../engine/context.js';
import { ControllerDownloads } from '../engine/downloads.js';
import { runOutputs } from '../engine/outputs.js';
import { PeerReader } from '../engine/peer-read.js';
import { PendingLedger } from '../engine/pending.js';
import { ErrorCollector } from '../engine/plan.js';
import { planRun, type RunOptions, runUnits } from '../engine/run-plan.js';
import { provisionUnits } from '../engine/units.js';
import { Walker } from '../engine/walker.js';
import { DEFAULT_FORKS } from '../util/pool.js';

/** Returns the exit code. */
export async function provision(env: string, o: RunOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  const forks = o.forks ?? DEFAULT_FORKS;
  const conns = new ConnectionPool(ctx.connectOptions, forks);
  // SSH handshakes overlap the loading of the roles (connecting changes nothing on a host).
  conns.warm(ctx.hosts, ctx.vars);
  // Steps that need a value from another host (a worker's swarm join token) read it through these.
  const peers = new PeerReader(ctx.inventory.hosts, ctx.vars, ctx.connectOptions);
  const events = await runOutputs({ json: !!o.json, verbose: !!o.verbose, check: !!o.check, recap: true });
  const walker = new Walker(
    {
      command: 'provision',
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
  try {
    const errors = new ErrorCollector();
    const units = await provisionUnits(ctx, errors);
    const [plans] = await planRun(ctx, [units], errors, walker, {
      keepOpen: ctx.hosts.length <= forks,
      tags: o.tags,
    });
    await walker.walk(
      plans.filter((p) => !walker.failed.has(p.host.name)),
      { maxFailPercentage: 100 },
      runUnits({ ...o, peers, pending: PendingLedger.of(plans), downloads }),
    );
    return await walker.finish();
  } finally {
    downloads.close();
    await walker.close();
    await peers.closeAll();
    events.close();
  }
}
