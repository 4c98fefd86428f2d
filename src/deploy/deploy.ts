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
import { type Connection, connect, UnreachableError } from '../connection/index.js';
import { batchSizes, becomePasswordOf, loadRunContext, type RunContext } from '../engine/session.js';
import { UserError } from '../util/errors.js';
import {
  hostHasCommit,
  hostRefTips,
  parseState,
  pullFetch,
  receiveBundle,
  recordDeploy,
  resolveOnHost,
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
import {
  acquireLockScript,
  breakLockScript,
  describeHolder,
  LOCK_HELD,
  lockFileContent,
  newLockInfo,
  releaseLockScript,
} from './lock.js';
import { DeployOutput, seconds } from './output.js';
import { deployPlan, describePlan } from './plan.js';
import { parseReleaseRecord, type ReleaseRecord, releaseName } from './release.js';
import { runPlan, runStep, StepFailure } from './runner.js';
import { DEPLOY_LOCK_DIR, type Site, sitePaths } from './site.js';
import { filterSites, parseSitesVars, type SiteTarget, siteEnvFile } from './targets.js';
import { type DeployNotice, notify } from './webhook.js';

export interface DeployCliOptions {
  branch?: string;
  site?: string;
  ifChanged?: boolean;
  check?: boolean;
  serial?: string;
  lockWait?: string;
  breakLock?: boolean;
  limit?: string;
  json?: boolean;
  var?: string[];
  vaultPasswordFile?: string;
  hostKeyChecking?: 'accept-new' | 'off';
  askBecomePass?: boolean;
  connectTimeout?: string;
  verbose?: boolean;
}

export type SiteOutcomeStatus =
  | 'deployed'
  | 'rolled-back'
  | 'unchanged'
  | 'failed'
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
}

/** Loads the inventory, secrets and every host's sites; nothing is contacted yet. */
export async function openSession(env: string, o: DeployCliOptions): Promise<HostSession> {
  const ctx = await loadRunContext(env, { ...o, forks: undefined, tags: undefined });
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
  return {
    ctx,
    targets,
    by: await deployerName(),
    out: new DeployOutput({ json: !!o.json, verbose: !!o.verbose }),
  };
}

export async function connectTarget(s: HostSession, t: SiteTarget): Promise<Connection> {
  const vars = s.ctx.vars.get(t.host.name) ?? t.host.vars;
  return connect(t.host, {
    ...s.ctx.connectOptions,
    becomePassword: s.ctx.connectOptions.becomePassword ?? becomePasswordOf(vars),
  });
}

/** Takes the host's lock, waiting up to `waitSeconds` for another deploy; throws a StepFailure when it cannot. */
export async function takeLock(
  conn: Connection,
  s: HostSession,
  host: string,
  reason: string,
  waitSeconds: number,
): Promise<string> {
  const info = newLockInfo(s.by, reason);
  const deadline = Date.now() + waitSeconds * 1000;
  let told = false;
  for (;;) {
    const res = await conn.exec(acquireLockScript(), { stdin: lockFileContent(info) });
    if (res.code === 0) {
      heldLocks.set(info.token, conn);
      return info.token;
    }
    if (res.code !== LOCK_HELD) {
      throw new StepFailure('lock', acquireLockScript(), res.code, res.stderr + res.stdout);
    }
    const holder = describeHolder(res.stdout);
    if (Date.now() >= deadline) {
      throw new StepFailure(
        'lock',
        `mkdir ${DEPLOY_LOCK_DIR}`,
        LOCK_HELD,
        `another deploy holds the lock of ${host}: ${holder}\n(waited ${waitSeconds} s; if that deploy is dead, run again with --break-lock)`,
      );
    }
    if (!told) {
      s.out.info(`${host}  waiting for the deploy lock held by ${holder}`);
      told = true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export async function releaseLock(conn: Connection, token: string): Promise<void> {
  heldLocks.delete(token);
  try {
    await conn.exec(releaseLockScript(token));
  } catch {
    // the connection is gone: the lock stays, --break-lock clears it
  }
}

/** Locks this process holds, by token: released on Ctrl-C too. */
const heldLocks = new Map<string, Connection>();

/**
 * On Ctrl-C (or SIGTERM) during a deploy: release the host locks this process holds (bounded), say
 * what may be left behind, exit 130. Returns the function that removes the handlers.
 */
export function releaseLocksOnInterrupt(out: DeployOutput): () => void {
  const handler = (signal: NodeJS.Signals) => {
    out.warn(
      `\n${signal}: interrupted. Releasing the deploy locks; the live release keeps serving, but a half-made release may remain (the next deploy ignores it; rollback never picks it).`,
    );
    const releases = [...heldLocks].map(([token, conn]) =>
      conn.exec(releaseLockScript(token)).catch(() => undefined),
    );
    const timeout = new Promise((r) => setTimeout(r, 5000).unref());
    void Promise.race([Promise.all(releases), timeout]).finally(() => process.exit(130));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
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

export function exitCodeOf(outcomes: SiteOutcome[]): number {
  if (outcomes.some((o) => o.status === 'failed')) return 2;
  if (outcomes.some((o) => o.status === 'unreachable')) return 3;
  return 0;
}

export async function deploy(env: string, o: DeployCliOptions): Promise<number> {
  const started = Date.now();
  const s = await openSession(env, o);
  const waitSeconds = o.lockWait === undefined ? 120 : Number(o.lockWait);
  if (!Number.isFinite(waitSeconds) || waitSeconds < 0)
    throw new UserError(`--lock-wait must be a number of seconds, got "${o.lockWait}"`, 1);
  const pushRefs = await resolvePushRefs(s, o.branch);
  const reason = `deploy ${s.ctx.env}${o.branch ? ` --branch ${o.branch}` : ''} (pid ${process.pid})`;

  const outcomes: SiteOutcome[] = [];
  let offset = 0;
  let stopped = false;
  const removeHandlers = releaseLocksOnInterrupt(s.out);
  const sizes = batchSizes(s.targets.length, o.serial ?? (s.targets.length > 1 ? 1 : undefined));
  for (const size of sizes) {
    const batch = s.targets.slice(offset, offset + size);
    offset += size;
    if (stopped) {
      for (const t of batch) {
        for (const site of t.vars.sites) {
          outcomes.push({
            host: t.host.name,
            site: site.name,
            status: 'skipped',
            durationMs: 0,
            message: 'an earlier host failed',
          });
          s.out.step(t.host.name, site.name, 'skipped', 'an earlier host failed: not deployed');
        }
      }
      continue;
    }
    const results = await Promise.all(batch.map((t) => deployHost(s, t, o, pushRefs, reason, waitSeconds)));
    for (const r of results) outcomes.push(...r);
    if (results.flat().some((r) => r.status === 'failed' || r.status === 'unreachable')) stopped = true;
  }

  removeHandlers();
  summarize(s, outcomes, started);
  return exitCodeOf(outcomes);
}

function summarize(s: HostSession, outcomes: SiteOutcome[], started: number) {
  s.out.info('');
  for (const r of outcomes) {
    const what = r.release ? ` ${r.release}` : r.commit ? ` ${r.commit.slice(0, 7)}` : '';
    const extra = r.failedStep
      ? ` at "${r.failedStep}"${r.migrated ? ' (AFTER the migrations ran)' : ''}`
      : r.message
        ? ` (${r.message})`
        : '';
    s.out.info(`${r.status.toUpperCase().padEnd(11)} ${r.host}  ${r.site}${what}${extra}`);
  }
  s.out.info(`done in ${seconds(Date.now() - started)}`);
  s.out.json({ outcomes, durationMs: Date.now() - started });
}

async function deployHost(
  s: HostSession,
  t: SiteTarget,
  o: DeployCliOptions,
  pushRefs: Map<string, ResolvedRef>,
  reason: string,
  waitSeconds: number,
): Promise<SiteOutcome[]> {
  const host = t.host.name;
  const outcomes: SiteOutcome[] = [];
  const fail = (status: SiteOutcomeStatus, step: string, message: string) =>
    t.vars.sites.map((site) => ({ host, site: site.name, status, failedStep: step, message, durationMs: 0 }));
  let conn: Connection;
  try {
    conn = await connectTarget(s, t);
  } catch (err) {
    if (!(err instanceof UnreachableError)) throw err;
    s.out.warn(`${host}  unreachable (${err.reason}): ${err.message}`);
    return fail('unreachable', 'connect', err.message);
  }
  let token: string | undefined;
  try {
    if (o.breakLock && !o.check) {
      const res = await conn.exec(breakLockScript());
      if (res.stdout.trim())
        s.out.info(`${host}  broke the deploy lock held by ${describeHolder(res.stdout)}`);
    }
    if (!o.check) {
      try {
        token = await takeLock(conn, s, host, reason, waitSeconds);
        s.out.step(host, '*', 'lock', 'taken');
      } catch (err) {
        if (!(err instanceof StepFailure)) throw err;
        s.out.step(host, '*', 'lock', 'FAILED');
        s.out.block(err.output);
        const results = fail('failed', 'lock', err.output.split('\n')[0]);
        for (const site of t.vars.sites)
          await sendNotice(s, site, {
            host,
            ok: false,
            ref: o.branch ?? site.branch,
            failedStep: 'lock',
            detail: err.output,
            durationMs: 0,
          });
        return results;
      }
    }
    for (const site of t.vars.sites) {
      const r = await deploySite(s, conn, t, site, o, pushRefs.get(site.name));
      outcomes.push(r);
      if (r.status === 'failed') {
        for (const rest of t.vars.sites.slice(t.vars.sites.indexOf(site) + 1)) {
          outcomes.push({
            host,
            site: rest.name,
            status: 'skipped',
            durationMs: 0,
            message: `${site.name} failed first`,
          });
        }
        break;
      }
    }
    return outcomes;
  } catch (err) {
    if (err instanceof UnreachableError) {
      s.out.warn(`${host}  connection lost (${err.reason}): ${err.message}`);
      return [...outcomes, ...fail('unreachable', 'connection', err.message).slice(outcomes.length)];
    }
    throw err;
  } finally {
    if (token) await releaseLock(conn, token);
    await conn.close();
  }
}

async function sendNotice(
  s: HostSession,
  site: Site,
  n: Omit<DeployNotice, 'action' | 'env' | 'site' | 'by'> & { action?: DeployNotice['action'] },
): Promise<void> {
  if (!site.webhook) return;
  const warning = await notify(site.webhook, {
    action: 'deploy',
    env: s.ctx.env,
    site: site.name,
    by: s.by,
    ...n,
  });
  if (warning) s.out.warn(`${n.host}  ${site.name}  webhook: ${warning}`);
  else s.out.step(n.host, site.name, 'webhook', 'notified');
}

async function deploySite(
  s: HostSession,
  conn: Connection,
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
      await sendNotice(s, site, {
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
      s.out.step(host, site.name, 'state', 'FAILED');
      const message = `site ${site.name} is not provisioned on ${host} (no ${paths.releases}): run \`verdandi provision ${s.ctx.env}\` with the sites role first`;
      s.out.block(message);
      return finish({ failedStep: 'state', message }, { detail: message });
    }

    // Step 2: the commit, in the host's repository.
    let commit: string;
    let hostLacksCommit = false;
    if (pushed) {
      commit = pushed.commit;
      hostLacksCommit = (await conn.exec(hostHasCommit(paths, commit))).code !== 0;
      if (!o.check && hostLacksCommit) {
        const tips = (await runStep(conn, { title: 'send commits', command: hostRefTips(paths) })).stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean);
        const mirror = localMirrorPath(s.ctx.projectDir, site.name);
        const bundle = await withMirrorLock(mirror, () => makeBundle(mirror, commit, tips));
        await runStep(conn, {
          title: 'send commits',
          command: receiveBundle(paths, commit),
          stdin: bundle,
          timeoutMs: 600_000,
        });
        s.out.step(
          host,
          site.name,
          'send commits',
          `ok (${Math.round((bundle.length * 3) / 4 / 1024)} KiB bundle)`,
        );
      }
    } else {
      if (!o.check)
        await runStep(conn, { title: 'fetch', command: pullFetch(site, paths), timeoutMs: 600_000 });
      const res = await conn.exec(resolveOnHost(paths, ref));
      if (res.code !== 0) {
        const message = `"${ref}" is no branch, tag or commit of ${site.repo} (as fetched by ${host})`;
        s.out.step(host, site.name, 'fetch', 'FAILED');
        s.out.block(message);
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
    const plan = deployPlan({ site, paths, state, record, env: siteEnvFile(site, s.ctx.secrets, s.ctx.env) });
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

    const result = await runPlan(conn, plan, { host, site: site.name }, s.out);
    if (result.ok) {
      for (const w of result.warnings) s.out.warn(`${host}  ${site.name}  ${w}`);
      return finish({ status: 'deployed' }, {});
    }
    const f = result.failure!;
    let message: string;
    if (result.live)
      message = `the new release ${record.release} is live, but "${f.step}" failed after the switch`;
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
    await conn
      .exec(recordDeploy(paths, { ...record, action: 'deploy', outcome: 'failed', step: f.step }))
      .catch(() => undefined);
    return finish({ failedStep: f.step, migrated: result.migrated, message }, { detail: f.report() });
  } catch (err) {
    if (err instanceof StepFailure) {
      s.out.step(host, site.name, err.step, 'FAILED');
      s.out.block(err.report());
      return finish({ failedStep: err.step, message: err.message }, { detail: err.report() });
    }
    throw err;
  }
}
