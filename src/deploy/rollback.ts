/**
 * `verdandi rollback <env> [--to <release>]`: the previous release (or the named one) starts in the idle
 * color, must pass the same health check as a deploy, then takes the traffic. Migrations are not
 * reversed: a release that needs the old schema must be able to run on the new one (or be fixed forward).
 */
import type { HostWork } from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { parseState, stateScript } from './commands.js';
import {
  closeSession,
  type DeployCliOptions,
  eachSite,
  type HostSession,
  openSession,
  type SiteOutcome,
  siteDone,
  siteOutcomes,
  summarize,
  walkOptions,
} from './deploy.js';
import { describePlan, rollbackPlan } from './plan.js';
import { previousRelease } from './release.js';
import { runPlan, runStep } from './runner.js';
import { type Site, sitePaths } from './site.js';
import type { SiteTarget } from './targets.js';

export interface RollbackCliOptions extends DeployCliOptions {
  to?: string;
}

export async function rollback(env: string, o: RollbackCliOptions): Promise<number> {
  const started = Date.now();
  const s = await openSession(env, o, 'rollback', () => o.to ?? 'the previous release');
  try {
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

async function rollbackSite(
  s: HostSession,
  { conn, signal }: HostWork,
  t: SiteTarget,
  site: Site,
  o: RollbackCliOptions,
): Promise<SiteOutcome> {
  const started = Date.now();
  const host = t.host.name;
  const paths = sitePaths(site, t.vars.sites_root);
  const state = parseState(
    paths,
    (await runStep(conn, { title: 'state', command: stateScript(site, paths) }, { signal })).stdout,
  );
  // Only releases that once served: one left by an interrupted deploy never passed its health check.
  const target = o.to ?? previousRelease(state.deployed, state.current);
  const outcome = (r: Partial<SiteOutcome>): SiteOutcome => ({
    host,
    site: site.name,
    status: 'failed',
    durationMs: Date.now() - started,
    ...r,
  });
  if (!target) {
    const message = `no release before ${state.current ?? '(none)'} on ${host}: nothing to roll back to`;
    s.out.step(host, site.name, 'rollback', `FAILED: ${message}`, 'failed');
    return outcome({ failedStep: 'choose release', message });
  }
  if (!state.releases.includes(target)) {
    throw new UserError(
      `site ${site.name} on ${host} has no release "${target}"`,
      1,
      `releases there: ${state.releases.join(', ') || 'none'}`,
    );
  }
  if (target === state.current) {
    s.out.step(host, site.name, 'rollback', `${target} is already live`);
    return outcome({ status: 'unchanged', release: target });
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
    return outcome({ status: 'checked', release: target });
  }
  s.out.step(host, site.name, 'rollback', `${state.current ?? '(none)'} → ${target}`);
  const result = await runPlan(conn, plan, { host, site: site.name }, s.out, signal);
  const ok = result.ok;
  if (ok) s.out.logged(host, plan.logEntry);
  const message = ok
    ? undefined
    : result.interrupted
      ? `interrupted during "${result.failure?.step}": ${state.current ?? '(none)'} still serves`
      : result.live
        ? `${target} is live, but "${result.failure?.step}" failed after the switch`
        : `${state.current ?? '(none)'} still serves`;
  siteDone(s, site, {
    action: 'rollback',
    host,
    ok,
    ref: target,
    release: target,
    durationMs: Date.now() - started,
    failedStep: result.failure?.step,
    detail: result.failure?.report(),
  });
  return ok
    ? outcome({ status: 'rolled-back', release: target })
    : outcome({
        status: result.interrupted ? 'interrupted' : 'failed',
        failedStep: result.failure?.step,
        release: target,
        message,
      });
}
