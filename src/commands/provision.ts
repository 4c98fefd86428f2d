/**
 * `verdandi provision <env>`: every host gets the roles of its groups. Everything is loaded and every
 * unit of every host evaluated before the first command runs on a host (a user error changes nothing).
 */
import { ConnectionPool } from '../engine/connection-pool.js';
import { loadRunContext } from '../engine/context.js';
import { execute, planRun, type RunOptions, reportedRun } from '../engine/execute.js';
import { PeerReader } from '../engine/peer-read.js';
import { PendingLedger } from '../engine/pending.js';
import { ErrorCollector } from '../engine/plan.js';
import { unknownTagsError } from '../engine/run.js';
import { provisionUnits } from '../engine/units.js';
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
  return reportedRun(conns, peers, o, async (reporter, stop) => {
    const errors = new ErrorCollector();
    const units = await provisionUnits(ctx, errors);
    const [plans] = await planRun(ctx, [units], errors, conns, {
      forks,
      reporter,
      keepOpen: ctx.hosts.length <= forks,
    });
    const badTags = unknownTagsError(
      o.tags,
      plans.flatMap((p) => p.units),
    );
    if (badTags) throw badTags;
    const { failed } = await execute(plans, conns, {
      check: !!o.check,
      diff: !!o.diff,
      tags: o.tags,
      forks,
      reporter,
      stop,
      peers,
      taskTimeout: o.taskTimeout,
      pending: PendingLedger.of(plans),
    });
    return failed;
  });
}
