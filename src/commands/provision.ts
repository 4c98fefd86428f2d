/**
 * `verdandi provision <env>`: every host gets the roles of its groups. Everything is loaded and every
 * unit of every host evaluated before the first command runs on a host (a user error changes nothing).
 */
import { loadRunContext } from '../engine/context.js';
import { PendingLedger } from '../engine/pending.js';
import { ErrorCollector } from '../engine/plan.js';
import { planRun, type RunOptions } from '../engine/run-plan.js';
import { openTaskRun } from '../engine/task-run.js';
import { provisionUnits } from '../engine/units.js';

/** Returns the exit code. */
export async function provision(env: string, o: RunOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  // SSH handshakes to every host overlap the loading of the roles.
  const run = await openTaskRun(ctx, 'provision', o, ctx.hosts);
  const { walker } = run;
  try {
    const errors = new ErrorCollector();
    const units = await provisionUnits(ctx, errors);
    const [plans] = await planRun(ctx, [units], errors, walker, {
      keepOpen: ctx.hosts.length <= run.forks,
      tags: o.tags,
    });
    await walker.walk(
      plans.filter((p) => !walker.failed.has(p.host.name)),
      { maxFailPercentage: 100 },
      run.work(PendingLedger.of(plans)),
    );
    return await walker.finish();
  } finally {
    await run.close();
  }
}
