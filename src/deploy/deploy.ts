/**
 * `verdandi deploy <env> --branch <b>`: for each host (in `--serial` batches, one host at a time by
 * default) and each of its sites:
 *   1. take the host's deploy lock (wait a bounded time for another deploy, then fail naming it);
 *   2. send the commit into the host's bare repository and cut `releases/<time>-<sha>` from it;
 *   3-7. run the plan (plan.ts): dependencies, build, checks, migrations under maintenance when some are
 *      pending, start beside the live color, health check, switch nginx and `current`, stop the old
 *      color, prune, record;
 *   8. notify the site's webhook.
 * A failure before the switch leaves the previous release serving (the plan's undo), reports the step,
 * the command and its output, and the command exits 2; a failing host stops the hosts after it.
 */
import { createReadStream } from 'node:fs';
import type { Connection } from '../connection/types.js';
import { ConnectionPool } from '../engine/connection-pool.js';
import { type ContextOptions, loadRunContext, type RunContext } from '../engine/context.js';
import type { RunEvents } from '../engine/events.js';
import { runOutputs } from '../engine/outputs.js';
import {
  DEFAULT_LOCK_WAIT_SECONDS,
  type HostRun,
  type HostWalkOptions,
  type HostWork,
  type LockOptions,
  Walker,
  type WalkOptions,
} from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import type { DeployLogEntry } from '../util/run-events.js';
import {
  hostHasCommit,
  hostRefTips,
  parseState,
  pullFetch,
  receiveBundle,
  recordDeploy,
  removeReleases,
  resolveOnHost,
  type SiteState,
  stateScript,
} from './commands.js';
import {
  deployerName,
  localMirrorPath,
  makeBundle,
  type ResolvedRef,
  resolveRef,
  updateMirror,
  withMirrorLock,
} from './git.js';
import { DeployOutput, seconds } from './output.js';
import { deployPlan, describePlan } from './plan.js';
import { parseReleaseRecord, type ReleaseRecord, releaseName } from './release.js';
import { runPlan, runStep, StepFailure } from './runner.js';
import { ROLLED_BACK_EXIT } from './runtimes/swarm.js';
import { type Site, type SitePaths, sitePaths } from './site.js';
import {
  filterSites,
  parseSitesVars,
  type SiteTarget,
  siteEnvFile,
  siteRegistryPassword,
} from './targets.js';
import { type DeployNotice, WebhookNotices } from './webhook.js';

export interface DeployCliOptions extends Partial<HostWalkOptions>, ContextOptions {
  branch?: string;
  site?: string;
  ifChanged?: boolean;
  check?: boolean;
  json?: boolean;
  verbose?: boolean;
}

export type SiteOutcomeStatus =
  | 'deployed'
  | 'rolled-back'
  | 'unchanged'
  | 'failed'
  | 'interrupted'
  | 'checked'
  | 'skipped'
  | 'unreachable';

export interface SiteOutcome {
  host: string;
  site: string;
  status: SiteOutcomeStatus;
  release?: string;
  commit?: string;
  ref?: string;
  failedStep?: string;
  migrated?: boolean;
  durationMs: number;
  message?: string;
}

export interface HostSession {
  ctx: RunContext;
  targets: SiteTarget[];
  by: string;
  out: DeployOutput;
  walk: HostWalkOptions;
  events: RunEvents;
  /** Walks the hosts (walker.ts); `close` it when the command ends. */
  walker: Walker;
  /** The sites' webhooks, told how each site's deploy or rollback ended and of refused locks. */
  notices: WebhookNotices;
  /** Each site's environment file by `host/site`, rendered before any host is contacted. */
  envFiles: Map<string, string>;
  /** The registry password of each swarm site with a registry, by `host/site`. */
  registryPasswords: Map<string, string>;
}

/**
 * Loads the inventory, secrets and every host's sites, and checks the options and every site's
 * environment (a missing secret): every user error comes before any host is contacted.
 */
export async function openSession(
  env: string,
  o: DeployCliOptions,
  command: 'deploy' | 'rollback' | 'status',
  ref: (site: Site) => string = (site) => o.branch ?? site.branch,
): Promise<HostSession> {
  const walk: HostWalkOptions = {
    serial: o.serial,
    lockWaitSeconds: o.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS,
    breakLock: !!o.breakLock,
  };
  const ctx = await loadRunContext(env, o);
  const all = ctx.hosts.map((host) => ({
    host,
    vars: parseSitesVars(host, ctx.vars.get(host.name) ?? host.vars, ctx.sensitive.get(host.name)),
  }));
  const only = o.site
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const targets = filterSites(all, only);
  if (targets.length === 0) {
    throw new UserError(
      `no host of ${ctx.env}${o.limit ? ` matching --limit ${o.limit}` : ''} has sites`,
      1,
      'list them in the inventory vars as `sites: [...]` (see roles/sites/README.md)',
    );
  }
  const envFiles = new Map<string, string>();
  const registryPasswords = new Map<string, string>();
  for (const t of targets)
    for (const site of t.vars.sites) {
      const key = `${t.host.name}/${site.name}`;
      envFiles.set(key, siteEnvFile(site, ctx.secrets, ctx.env));
      const password = siteRegistryPassword(site, ctx.secrets, ctx.env);
      if (password !== undefined) registryPasswords.set(key, password);
    }
  const by = await deployerName();
  const events = await runOutputs({
    json: !!o.json,
    verbose: !!o.verbose,
    check: !!o.check,
    warnsToStderr: true,
  });
  const notices = new WebhookNotices(events, {
    action: command === 'rollback' ? 'rollback' : 'deploy',
    env: ctx.env,
    by,
    targets: (host) =>
      (targets.find((t) => t.host.name === host)?.vars.sites ?? []).flatMap((site) =>
        site.webhook ? [{ site: site.name, url: site.webhook, ref: ref(site) }] : [],
      ),
  });
  events.on(notices.handle);
  const walker = new Walker(
    {
      command,
      env: ctx.env,
      check: !!o.check,
      events,
      conns: new ConnectionPool(ctx.connectOptions, DEFAULT_FORKS),
      hostVars: ctx.vars,
      forks: DEFAULT_FORKS,
      onInterrupt: 'abort',
    },
    targets.map((t) => t.host.name),
  );
  return {
    ctx,
    targets,
    by,
    out: new DeployOutput(events, { verbose: !!o.verbose }),
    walk,
    events,
    walker,
    notices,
    envFiles,
    registryPasswords,
  };
}

/** The end of a command's session: the notices posted, the signals and connections let go. */
export async function closeSession(s: HostSession): Promise<void> {
  await s.notices.settled();
  await s.walker.close();
  s.events.close();
}

/**
 * How deploy, rollback and status walk their hosts: one host at a time when there are several unless
 * --serial says otherwise (status: all at once); the lock when `lock` is given.
 */
export function walkOptions(
  s: HostSession,
  lock: Pick<LockOptions, 'reason'> | undefined,
  rolling: boolean,
): WalkOptions {
  return {
    serial: s.walk.serial ?? (rolling && s.targets.length > 1 ? 1 : undefined),
    // Rolling: after a batch where a host failed or was unreachable, the later batches do not start.
    maxFailPercentage: rolling ? 0 : 100,
    lock: lock && {
      ...lock,
      by: s.by,
      waitSeconds: s.walk.lockWaitSeconds,
      breakLock: s.walk.breakLock,
    },
  };
}

/** Per site: what the work said, and for the sites it did not reach, what stopped its host. */
export function siteOutcomes(
  s: HostSession,
  runs: HostRun<unknown>[],
  done: Map<string, SiteOutcome[]>,
): SiteOutcome[] {
  const outcomes: SiteOutcome[] = [];
  for (const run of runs) {
    const t = s.targets.find((x) => x.host.name === run.host)!;
    const reached = done.get(run.host) ?? [];
    outcomes.push(...reached);
    for (const site of t.vars.sites.slice(reached.length)) {
      outcomes.push({
        host: run.host,
        site: site.name,
        status: unreachedStatus(run),
        failedStep: run.step,
        message: run.message,
        durationMs: 0,
      });
    }
  }
  return outcomes;
}

function unreachedStatus(run: HostRun<unknown>): SiteOutcomeStatus {
  if (run.status === 'ok') return 'skipped';
  return run.status;
}

/** A site's outcome that lets the host go on to its next site. */
function succeeded(o: SiteOutcome): boolean {
  return !['failed', 'interrupted', 'unreachable'].includes(o.status);
}

/**
 * Runs `site` for each site of the host in order; after a site fails, the host's later sites are
 * skipped. The outcomes go into `done` as they come, so a host lost midway keeps what it finished.
 */
export async function eachSite(
  t: SiteTarget,
  done: Map<string, SiteOutcome[]>,
  site: (site: Site) => Promise<SiteOutcome>,
): Promise<{ ok: boolean; result: SiteOutcome[] }> {
  const outcomes: SiteOutcome[] = [];
  done.set(t.host.name, outcomes);
  for (const [i, each] of t.vars.sites.entries()) {
    const r = await site(each);
    outcomes.push(r);
    if (!succeeded(r)) {
      for (const rest of t.vars.sites.slice(i + 1))
        outcomes.push({
          host: t.host.name,
          site: rest.name,
          status: 'skipped',
          durationMs: 0,
          message: `${each.name} did not finish first`,
        });
      break;
    }
  }
  return { ok: outcomes.every(succeeded), result: outcomes };
}

/** Resolves the ref of every `fetch: push` site once, locally (fails before touching any host). */
async function resolvePushRefs(
  s: HostSession,
  branch: string | undefined,
): Promise<Map<string, ResolvedRef>> {
  const resolved = new Map<string, ResolvedRef>();
  const sites = new Map<string, Site>();
  for (const t of s.targets)
    for (const site of t.vars.sites) if (site.fetch === 'push') sites.set(site.name, site);
  for (const site of sites.values()) {
    const ref = branch ?? site.branch;
    const mirror = localMirrorPath(s.ctx.projectDir, site.name);
    const r = await withMirrorLock(mirror, async () => {
      await updateMirror(mirror, site.repo);
      return resolveRef(mirror, ref);
    });
    if (!r) {
      throw new UserError(
        `site ${site.name}: "${ref}" is no branch, tag or commit of ${site.repo}`,
        1,
        'check --branch (and that the commit was pushed)',
      );
    }
    resolved.set(site.name, r);
    s.out.verbose(`${site.name}: ${ref} is ${r.kind} ${r.commit}`);
  }
  return resolved;
}

export async function deploy(env: string, o: DeployCliOptions): Promise<number> {
  const started = Date.now();
  const s = await openSession(env, o, 'deploy');
  try {
    const pushRefs = await resolvePushRefs(s, o.branch);
    const reason = `deploy ${s.ctx.env}${o.branch ? ` --branch ${o.branch}` : ''}`;
    const done = new Map<string, SiteOutcome[]>();
    const runs = await s.walker.walk(
      s.targets,
      walkOptions(s, o.check ? undefined : { reason }, true),
      (t, h) => eachSite(t, done, (site) => deploySite(s, h, t, site, o, pushRefs.get(site.name))),
    );
    await s.notices.settled();
    summarize(s, siteOutcomes(s, runs, done), started);
    return await s.walker.finish();
  } finally {
    await closeSession(s);
  }
}

export function summarize(s: HostSession, outcomes: SiteOutcome[], started: number): void {
  const interrupted = s.walker.stop.signal;
  s.out.info('');
  for (const r of outcomes) {
    const what = r.release ? ` ${r.release}` : r.commit ? ` ${r.commit.slice(0, 7)}` : '';
    const extra = r.failedStep
      ? ` at "${r.failedStep}"${r.migrated ? ' (AFTER the migrations ran)' : ''}${r.message ? `: ${r.message}` : ''}`
      : r.message
        ? ` (${r.message})`
        : '';
    s.out.info(`${r.status.toUpperCase().padEnd(11)} ${r.host}  ${r.site}${what}${extra}`);
  }
  if (interrupted) s.out.info(`interrupted by ${interrupted}: the hosts above show where each stopped`);
  s.out.info(`done in ${seconds(Date.now() - started)}`);
  s.out.json({ outcomes, ...(interrupted ? { interrupted } : {}) });
}

/**
 * Releases left by deploys that died before going live (SIGKILL, a lost connection): never marked as
 * deployed, not `current`, run by no color. Only the holder of the host's lock may judge so.
 */
export function halfMadeReleases(state: SiteState): string[] {
  const inUse = new Set([state.current, ...Object.values(state.slots)]);
  return state.releases.filter((r) => !state.deployed.includes(r) && !inUse.has(r));
}

/** Removes the half-made releases of dead deploys (the caller holds the lock). */
export async function removeHalfMade(
  s: HostSession,
  conn: Connection,
  where: { host: string; site: Site; paths: SitePaths },
  state: SiteState,
  signal: AbortSignal,
): Promise<void> {
  const left = halfMadeReleases(state);
  const command = removeReleases(where.site, where.paths, left);
  if (!command) return;
  await runStep(conn, { title: 'remove half-made releases', command }, { signal });
  s.out.step(
    where.host,
    where.site.name,
    'leftovers',
    `removed ${left.join(', ')} (left half-made by an interrupted deploy)`,
  );
  state.releases = state.releases.filter((r) => !left.includes(r));
}

/** The site's deploy or rollback is over: an event, which the webhook notices consume. */
export function siteDone(
  s: HostSession,
  site: Site,
  n: Omit<DeployNotice, 'action' | 'env' | 'site' | 'by'> & { action?: DeployNotice['action'] },
): void {
  s.events.emit({
    type: 'site-done',
    site: site.name,
    ...n,
    action: n.action === 'rollback' ? 'rollback' : 'deploy',
  });
}

async function deploySite(
  s: HostSession,
  { conn, signal }: HostWork,
  t: SiteTarget,
  site: Site,
  o: DeployCliOptions,
  pushed: ResolvedRef | undefined,
): Promise<SiteOutcome> {
  const started = Date.now();
  const host = t.host.name;
  const ref = o.branch ?? site.branch;
  const paths = sitePaths(site, t.vars.sites_root);
  const base: SiteOutcome = { host, site: site.name, status: 'failed', ref, durationMs: 0 };
  const finish = async (r: Partial<SiteOutcome>, notice?: Partial<DeployNotice>): Promise<SiteOutcome> => {
    const outcome = { ...base, ...r, durationMs: Date.now() - started };
    if (notice) {
      siteDone(s, site, {
        host,
        ok: outcome.status === 'deployed',
        ref,
        commit: outcome.commit,
        release: outcome.release,
        durationMs: outcome.durationMs,
        failedStep: outcome.failedStep,
        migrated: outcome.migrated,
        ...notice,
      });
    }
    return outcome;
  };

  try {
    const state = parseState(
      paths,
      (await runStep(conn, { title: 'state', command: stateScript(site, paths) })).stdout,
    );
    if (!state.provisioned) {
      const message = `site ${site.name} is not provisioned on ${host} (no ${paths.releases}): run \`verdandi provision ${s.ctx.env}\` with the sites role first`;
      s.out.failed(host, site.name, 'state', message);
      return finish({ failedStep: 'state', message }, { detail: message });
    }
    if (!o.check) await removeHalfMade(s, conn, { host, site, paths }, state, signal);

    // Step 2: the commit, in the host's repository.
    let commit: string;
    let hostLacksCommit = false;
    if (pushed) {
      commit = pushed.commit;
      hostLacksCommit = (await conn.exec(hostHasCommit(paths, commit))).code !== 0;
      if (!o.check && hostLacksCommit) {
        const tips = (
          await runStep(conn, { title: 'send commits', command: hostRefTips(paths) }, { signal })
        ).stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean);
        const mirror = localMirrorPath(s.ctx.projectDir, site.name);
        const bundle = await withMirrorLock(mirror, () => makeBundle(mirror, commit, tips));
        try {
          await runStep(
            conn,
            {
              title: 'send commits',
              command: receiveBundle(paths, commit, bundle.bytes),
              stdin: createReadStream(bundle.file),
              timeoutMs: 600_000,
            },
            { signal },
          );
        } finally {
          await bundle.remove();
        }
        s.out.step(host, site.name, 'send commits', `ok (${Math.round(bundle.bytes / 1024)} KiB bundle)`);
      }
    } else {
      if (!o.check)
        await runStep(
          conn,
          { title: 'fetch', command: pullFetch(site, paths), timeoutMs: 600_000 },
          { signal },
        );
      const res = await conn.exec(resolveOnHost(paths, ref));
      if (res.code !== 0) {
        const message = `"${ref}" is no branch, tag or commit of ${site.repo} (as fetched by ${host})`;
        s.out.failed(host, site.name, 'fetch', message);
        return finish({ failedStep: 'fetch', message }, { detail: message });
      }
      commit = res.stdout.trim();
    }
    base.commit = commit;

    const live = parseReleaseRecord(state.record ?? '');
    if (o.ifChanged && live?.commit === commit && state.current) {
      s.out.step(
        host,
        site.name,
        'unchanged',
        `${state.current} already runs ${commit.slice(0, 7)}: nothing to do`,
      );
      return finish({ status: 'unchanged', release: state.current });
    }

    const record: ReleaseRecord = {
      release: releaseName(new Date(), commit),
      site: site.name,
      commit,
      branch: ref,
      time: new Date().toISOString(),
      by: s.by,
    };
    const plan = deployPlan({
      site,
      paths,
      state,
      record,
      env: s.envFiles.get(`${host}/${site.name}`)!,
      registryPassword: s.registryPasswords.get(`${host}/${site.name}`),
    });
    base.release = record.release;

    if (o.check) {
      s.out.step(
        host,
        site.name,
        'would deploy',
        `${ref} (${commit.slice(0, 7)}) as ${record.release}; live: ${state.current ?? 'nothing yet'}`,
      );
      if (hostLacksCommit)
        s.out.block('code     send the missing commits to the host repository (git bundle)');
      s.out.block(describePlan(plan, !!o.verbose).join('\n'));
      return finish({ status: 'checked' });
    }

    const result = await runPlan(conn, plan, { host, site: site.name }, s.out, signal);
    if (result.ok) {
      s.out.logged(host, plan.logEntry);
      for (const w of result.warnings) s.out.warn(`${host}  ${site.name}  ${w}`);
      return finish({ status: 'deployed' }, {});
    }
    const f = result.failure!;
    let message: string;
    if (result.interrupted)
      message = `interrupted during "${f.step}": the previous release ${state.current ?? '(none)'} still serves; the half-made release was removed${result.migrated ? ' (the migrations RAN)' : ''}`;
    else if (result.live)
      message = `the new release ${record.release} is live, but "${f.step}" failed after the switch`;
    else if (f.step === 'converge' && f.code === ROLLED_BACK_EXIT)
      message = `ROLLED BACK: the new release did not become healthy and Swarm rolled the update back; the previous release ${state.current ?? '(none)'} serves again and the half-made release was removed${result.migrated ? ' (the migrations RAN)' : ''}`;
    else if (result.migrated)
      message = `the migrations RAN (the database has the new schema), then "${f.step}" failed; the previous release ${state.current ?? '(none)'} serves again`;
    else if (result.migrationFailed)
      message = `the migration failed; the previous release ${state.current ?? '(none)'} serves again and the half-made release was removed (a migration that does not run in one transaction may have left changes in the database)`;
    else
      message = `the previous release ${state.current ?? '(none)'} still serves; the half-made release was removed`;
    if (result.undoFailures.length)
      message += `; ${result.undoFailures.length} undo step(s) failed: check the host`;
    s.out.step(host, site.name, 'outcome', message);
    // The failure goes into the site's deploy log too (best effort).
    const failed: DeployLogEntry = {
      ...record,
      action: 'deploy',
      outcome: result.interrupted ? 'interrupted' : 'failed',
      step: f.step,
    };
    s.out.logged(host, failed);
    await conn.exec(recordDeploy(paths, failed)).catch(() => undefined);
    return finish(
      {
        status: result.interrupted ? 'interrupted' : 'failed',
        failedStep: f.step,
        migrated: result.migrated,
        message,
      },
      { detail: f.report() },
    );
  } catch (err) {
    if (err instanceof StepFailure) {
      if (signal.aborted) {
        s.out.step(host, site.name, err.step, 'INTERRUPTED', 'interrupted');
        return finish({
          status: 'interrupted',
          failedStep: err.step,
          message: 'interrupted: the live release is untouched',
        });
      }
      s.out.failed(host, site.name, err.step, err.report());
      return finish({ failedStep: err.step, message: err.message }, { detail: err.report() });
    }
    throw err;
  }
}
