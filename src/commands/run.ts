/**
 * `verdandi run <env> <playbook.ts>`: the plays of a playbook, one after the other, each on the hosts
 * its pattern selects (within --limit), in its `serial` batches. Every play of the playbook is
 * evaluated before the first command runs on a host (a user error changes nothing).
 */
import { loadRunContext, type RunContext } from '../engine/context.js';
import { loadPlaybook, rememberedFirstPlay } from '../engine/loader.js';
import { PendingLedger } from '../engine/pending.js';
import { ErrorCollector } from '../engine/plan.js';
import { planRun, type RunOptions } from '../engine/run-plan.js';
import { openTaskRun } from '../engine/task-run.js';
import type { Play } from '../engine/types.js';
import { playbookUnits } from '../engine/units.js';
import { batchSizes } from '../engine/walker.js';
import { selectHosts } from '../inventory/index.js';
import { InventoryError, type InventoryHost } from '../inventory/types.js';
import { UserError } from '../util/errors.js';

/** The hosts of a play's first `serial` batch (after --limit); none when its pattern or serial is wrong. */
function firstBatch(ctx: RunContext, play: Pick<Play, 'hosts' | 'serial'> | undefined): InventoryHost[] {
  if (!play) return [];
  try {
    const limited = new Set(ctx.hosts.map((h) => h.name));
    const hosts = selectHosts(ctx.inventory, play.hosts).filter((h) => limited.has(h.name));
    return hosts.slice(0, batchSizes(hosts.length, play.serial)[0]);
  } catch (err) {
    if (err instanceof UserError || err instanceof InventoryError) return [];
    throw err;
  }
}

/**
 * Returns the exit code. A host's connection stays open between plays when every host of the run
 * fits in `--forks`; otherwise it is closed after each play that ran on it and opened again by the
 * next one, so `--forks` bounds the connections.
 */
export async function runPlaybook(env: string, file: string, o: RunOptions): Promise<number> {
  const ctx = await loadRunContext(env, o);
  const run = await openTaskRun(ctx, 'run', o);
  const { walker, forks } = run;
  try {
    // The first play's first batch connects while the playbook and its roles load: as the last load of
    // the same sources found that play, then as this load does (the same hosts, unless the pattern is
    // computed: a host warmed for nothing is closed at the end). A pattern or serial that is wrong
    // warms nothing (the plan reports it).
    run.conns.warm(firstBatch(ctx, await rememberedFirstPlay(file)), ctx.vars);
    const playbook = await loadPlaybook(file);
    run.conns.warm(firstBatch(ctx, playbook.plays[0]), ctx.vars);
    const errors = new ErrorCollector();
    const plays = await playbookUnits(ctx, playbook, file, errors);
    const fitsInForks = new Set(plays.flatMap((p) => p.hosts.map((h) => h.host.name))).size <= forks;
    const plans = await planRun(
      ctx,
      plays.map((p) => p.hosts),
      errors,
      walker,
      { keepOpen: fitsInForks, tags: o.tags },
    );
    // A record on a host is replayed by any play of the playbook that defines its handler.
    const pending = PendingLedger.of(plans.flat());
    for (const [i, { play }] of plays.entries()) {
      if (walker.stop.requested) break;
      const later = new Set(plays.slice(i + 1).flatMap((p) => p.hosts.map((h) => h.host.name)));
      // A host that failed in an earlier play does not run the later ones.
      const failed = walker.failed;
      await walker.walk(
        plans[i].filter((p) => !failed.has(p.host.name)),
        {
          serial: play.serial,
          maxFailPercentage: play.maxFailPercentage,
          keepOpen: (host) => fitsInForks && later.has(host),
        },
        run.work(pending),
      );
    }
    return await walker.finish();
  } finally {
    await run.close();
  }
}
