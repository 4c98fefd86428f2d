/**
 * `verdandi rollback <env> [--to <release>]`: the previous release (or the named one) starts in the idle
 * color, must pass the same health check as a deploy, then takes the traffic. Migrations are not
 * reversed: a release that needs the old schema must be able to run on the new one (or be fixed forward).
 */
import type { HostWork } from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import {
  closeSession,
  type DeployCliOptions,
  eachSite,
  type HostSession,
  inSiteFrame,
  openSession,
  readSiteState,
  type SiteOutcome,
  siteOutcomes,
  summarize,
  walkOptions,
} from './deploy.js';
import { runPreHook } from './hooks.js';
import { describePlan, rollbackPlan } from './plan.js';
import { previousRelease } from './release.js';
import { runPlan } from './runner.js';
import type { Site } from './site.js';
import type { SiteTarget } from './targets.js';

export interface RollbackCliOptions extends DeployCliOptions {
  to?: string;
}

export async function rollback(env: string, o: RollbackCliOptions): Promise<number> {
  const started = Date.now();
  const s = await openSession(env, o, 'rollback', () => o.to ?? 'the previous release');
  try {
    if (s.hookFacts) await runPreHook(s.events, s.hookFacts, 'pre-rollback');
    const reason = `rollback ${s.ctx.env}${o.to ? ` --to ${o.to}` : ''}`;
    const done = new Map<string, SiteOutcome[]>();
    const runs = await s.walker.walk(
      s.targets,
      walkOptions(s, o.check ? undefined : { reason }, true),
      (t, h) => eachSite(t, done, (site) => rollbackSite(s, h, t, site, o)),
    );
    await s.notices.settled();
    summarize(s, siteOutcomes(s, runs, done), started);
    return await s.walker.finish();
  } finally {
    await closeSession(s);
  }
}

/** One site of a host: its state, the release to go back to, then --check's description or the plan run. */
function rollbackSite(
  s: HostSession,
  work: HostWork,
  t: SiteTarget,
  site: Site,
  o: RollbackCliOptions,
): Promise<SiteOutcome> {
  return inSiteFrame(s, work, t, site, 'rollback', o.to, async (f) => {
    const { host, paths } = f;
    const state = await readSiteState(f);
    // Only releases that once served: one left by an interrupted deploy never passed its health check.
    const target = o.to ?? previousRelease(state.deployed, state.current);
    if (!target) {
      const message = `no release before ${state.current ?? '(none)'} on ${host}: nothing to roll back to`;
      s.out.step(host, site.name, 'rollback', `FAILED: ${message}`, 'failed');
      return f.finish({ failedStep: 'choose release', message });
    }
    if (!state.releases.includes(target)) {
      throw new UserError(
        `site ${site.name} on ${host} has no release "${target}"`,
        1,
        `releases there: ${state.releases.join(', ') || 'none'}`,
      );
    }
    f.base.ref = target;
    f.base.release = target;
    if (target === state.current) {
      s.out.step(host, site.name, 'rollback', `${target} is already live`);
      return f.finish({ status: 'unchanged' });
    }
    const plan = rollbackPlan({
      site,
      paths,
      state,
      target,
      by: s.by,
      now: new Date(),
      registryPassword: s.registryPasswords.get(`${host}/${site.name}`),
    });
    if (o.check) {
      s.out.step(host, site.name, 'would roll back', `${state.current ?? '(none)'} → ${target}`);
      s.out.block(describePlan(plan, !!o.verbose).join('\n'));
      return f.finish({ status: 'checked' });
    }
    s.out.step(host, site.name, 'rollback', `${state.current ?? '(none)'} → ${target}`);
    const result = await runPlan(f.conn, plan, { host, site: site.name }, s.out, f.signal);
    if (result.ok) {
      s.out.logged(host, plan.logEntry);
      return f.finish({ status: 'rolled-back' }, {});
    }
    const message = result.interrupted
      ? `interrupted during "${result.failure?.step}": ${state.current ?? '(none)'} still serves`
      : result.live
        ? `${target} is live, but "${result.failure?.step}" failed after the switch`
        : `${state.current ?? '(none)'} still serves`;
    return f.finish(
      {
        status: result.interrupted ? 'interrupted' : 'failed',
        failedStep: result.failure?.step,
        message,
      },
      { detail: result.failure?.report() },
    );
  });
}
