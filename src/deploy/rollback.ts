/**
 * `verdandi rollback <env> [--to <release>]`: the previous release (or the named one) starts in the idle
 * color, must pass the same health check as a deploy, then takes the traffic. Migrations are not
 * reversed: a release that needs the old schema must be able to run on the new one (or be fixed forward).
 */
import type { Connection } from '../connection/types.js';
import { UnreachableError } from '../connection/types.js';
import { batchSizes } from '../engine/session.js';
import { UserError } from '../util/errors.js';
import { parseState, stateScript } from './commands.js';
import {
  connectTarget,
  type DeployCliOptions,
  exitCodeOf,
  type HostSession,
  openSession,
  releaseLock,
  releaseLocksOnInterrupt,
  type SiteOutcome,
  takeLock,
} from './deploy.js';
import { seconds } from './output.js';
import { describePlan, rollbackPlan } from './plan.js';
import { previousRelease } from './release.js';
import { runPlan, runStep, StepFailure } from './runner.js';
import { type Site, sitePaths } from './site.js';
import type { SiteTarget } from './targets.js';
import { notify } from './webhook.js';

export interface RollbackCliOptions extends DeployCliOptions {
  to?: string;
}

export async function rollback(env: string, o: RollbackCliOptions): Promise<number> {
  const started = Date.now();
  const s = await openSession(env, o);
  const outcomes: SiteOutcome[] = [];
  let stopped = false;
  let offset = 0;
  const removeHandlers = releaseLocksOnInterrupt(s.out);
  for (const size of batchSizes(s.targets.length, o.serial ?? (s.targets.length > 1 ? 1 : undefined))) {
    const batch = s.targets.slice(offset, offset + size);
    offset += size;
    if (stopped) {
      for (const t of batch)
        for (const site of t.vars.sites)
          outcomes.push({ host: t.host.name, site: site.name, status: 'skipped', durationMs: 0 });
      continue;
    }
    const results = (await Promise.all(batch.map((t) => rollbackHost(s, t, o)))).flat();
    outcomes.push(...results);
    if (results.some((r) => r.status === 'failed' || r.status === 'unreachable')) stopped = true;
  }
  removeHandlers();
  s.out.info('');
  for (const r of outcomes) {
    s.out.info(
      `${r.status.toUpperCase().padEnd(11)} ${r.host}  ${r.site}${r.release ? ` ${r.release}` : ''}${r.message ? ` (${r.message})` : ''}`,
    );
  }
  s.out.info(`done in ${seconds(Date.now() - started)}`);
  s.out.json({ outcomes, durationMs: Date.now() - started });
  return exitCodeOf(outcomes);
}

async function rollbackHost(s: HostSession, t: SiteTarget, o: RollbackCliOptions): Promise<SiteOutcome[]> {
  const host = t.host.name;
  let conn: Connection;
  try {
    conn = await connectTarget(s, t);
  } catch (err) {
    if (!(err instanceof UnreachableError)) throw err;
    s.out.warn(`${host}  unreachable (${err.reason}): ${err.message}`);
    return t.vars.sites.map((site) => ({
      host,
      site: site.name,
      status: 'unreachable',
      durationMs: 0,
      message: err.message,
    }));
  }
  let token: string | undefined;
  const outcomes: SiteOutcome[] = [];
  try {
    if (!o.check) {
      try {
        token = await takeLock(
          conn,
          s,
          host,
          `rollback ${s.ctx.env}${o.to ? ` --to ${o.to}` : ''} (pid ${process.pid})`,
          Number(o.lockWait ?? 120),
        );
      } catch (err) {
        if (!(err instanceof StepFailure)) throw err;
        s.out.block(err.output);
        return t.vars.sites.map((site) => ({
          host,
          site: site.name,
          status: 'failed',
          failedStep: 'lock',
          durationMs: 0,
          message: err.output.split('\n')[0],
        }));
      }
    }
    for (const site of t.vars.sites) {
      const r = await rollbackSite(s, conn, t, site, o);
      outcomes.push(r);
      if (r.status === 'failed') break;
    }
    return outcomes;
  } finally {
    if (token) await releaseLock(conn, token);
    await conn.close();
  }
}

async function rollbackSite(
  s: HostSession,
  conn: Connection,
  t: SiteTarget,
  site: Site,
  o: RollbackCliOptions,
): Promise<SiteOutcome> {
  const started = Date.now();
  const host = t.host.name;
  const paths = sitePaths(site, t.vars.sites_root);
  const state = parseState(
    paths,
    (await runStep(conn, { title: 'state', command: stateScript(site, paths) })).stdout,
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
    s.out.step(host, site.name, 'rollback', `FAILED: ${message}`);
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
  const plan = rollbackPlan({ site, paths, state, target, by: s.by, now: new Date() });
  if (o.check) {
    s.out.step(host, site.name, 'would roll back', `${state.current ?? '(none)'} → ${target}`);
    s.out.block(describePlan(plan, !!o.verbose).join('\n'));
    return outcome({ status: 'checked', release: target });
  }
  s.out.step(host, site.name, 'rollback', `${state.current ?? '(none)'} → ${target}`);
  const result = await runPlan(conn, plan, { host, site: site.name }, s.out);
  const ok = result.ok;
  const message = ok
    ? undefined
    : result.live
      ? `${target} is live, but "${result.failure?.step}" failed after the switch`
      : `${state.current ?? '(none)'} still serves`;
  if (site.webhook) {
    const warning = await notify(site.webhook, {
      action: 'rollback',
      env: s.ctx.env,
      host,
      site: site.name,
      ok,
      ref: target,
      release: target,
      by: s.by,
      durationMs: Date.now() - started,
      failedStep: result.failure?.step,
      detail: result.failure?.report(),
    });
    if (warning) s.out.warn(`${host}  ${site.name}  webhook: ${warning}`);
  }
  return ok
    ? outcome({ status: 'rolled-back', release: target })
    : outcome({ failedStep: result.failure?.step, release: target, message });
}
