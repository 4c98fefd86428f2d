/**
 * `verdandi deploy <env> --branch <b>`: for each host (in `--serial` batches, one host at a time by
 * default) and each of its sites:
 *   1. take the host's deploy lock (wait a bounded time for another deploy, then fail naming it);
 *   2. send the commit into the host's bare repository and cut `releases/<time>-<sha>` from it;
 *      with --if-changed, the lock, each site's state and its commit on the host are one round trip
 *      (first-look.ts), which also releases the lock when every site already runs its commit;
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
  type Opened,
  Walker,
  type WalkOptions,
} from '../engine/walker.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import type { DeployLogEntry } from '../util/run-events.js';
import {
  hostHasCommit,
  hostRefTips,
  pullFetch,
  receiveBundle,
  recordDeploy,
  resolveOnHost,
} from './commands.js';
import {
  type FirstLookScript,
  firstLookScript,
  firstLooks,
  lookVerdict,
  type SiteLook,
} from './first-look.js';
import {
  deployerName,
  localMirrorPath,
  makeBundle,
  type ResolvedRef,
  resolveRef,
  updateMirror,
  withMirrorLock,
} from './git.js';
import { type HookFacts, PostHooks, runPreHook } from './hooks.js';
import { DeployOutput, seconds } from './output.js';
import { type DeployPlan, deployPlan, describePlan, removeReleases } from './plan.js';
import { parseReleaseRecord, type ReleaseRecord, releaseName } from './release.js';
import { Interrupted, type PlanResult, runPlan, runStep, StepFailure } from './runner.js';
import { runtimeOf } from './runtimes/index.js';
import type { Site } from './site.js';
import { type SitePaths, sitePaths } from './site-base.js';
import { parseState, type SiteState, stateScript } from './state.js';
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
  /** What the project's hooks (hooks.ts) are told; undefined for status and --check. */
  hookFacts?: HookFacts;
  /** The post hooks, started by the run's end. */
  postHooks?: PostHooks;
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
  command: 'deploy' | 'rollback' | 'status' | 'console',
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
  const hookFacts: HookFacts | undefined =
    // Hooks are about deploys and rollbacks: status and console run none.
    command === 'status' || command === 'console' || o.check
      ? undefined
      : {
          action: command,
          env: ctx.env,
          projectDir: ctx.projectDir,
          sites: targets.flatMap((t) => t.vars.sites.map((site) => site.name)),
          hosts: targets.map((t) => t.host.name),
          branch: [...new Set(targets.flatMap((t) => t.vars.sites.map(ref)))].join(','),
          by,
        };
  const postHooks = hookFacts && new PostHooks(events, hookFacts);
  if (postHooks) events.on(postHooks.handle);
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
    hookFacts,
    postHooks,
    envFiles,
    registryPasswords,
  };
}

/** The end of a command's session: the notices posted, the signals and connections let go. */
export async function closeSession(s: HostSession): Promise<void> {
  await s.notices.settled();
  await s.postHooks?.settled();
  await s.walker.close();
  s.events.close();
}

/**
 * How deploy, rollback and status walk their hosts: one host at a time when there are several unless
 * --serial says otherwise (status: all at once); the lock when `lock` is given.
 */
export function walkOptions(
  s: HostSession,
  lock: Pick<LockOptions, 'reason' | 'opening'> | undefined,
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
    // The commits of the sites the controller pushes are known before any host is contacted (a site
    // whose hosts fetch it themselves, `fetch: pull`, learns its commit there).
    const commits = [...pushRefs.values()].map((r) => r.commit);
    if (s.hookFacts)
      await runPreHook(s.events, commits.length ? { ...s.hookFacts, commits } : s.hookFacts, 'pre-deploy');
    const reason = `deploy ${s.ctx.env}${o.branch ? ` --branch ${o.branch}` : ''}`;
    const done = new Map<string, SiteOutcome[]>();
    // --if-changed: each host's first look rides with its lock (first-look.ts), by host.
    const looks = new Map<string, FirstLookScript>();
    const opening = (host: string) => {
      const t = s.targets.find((x) => x.host.name === host)!;
      const look = firstLookScript(
        t.vars.sites.map((site) => ({
          site,
          paths: sitePaths(site, t.vars.sites_root),
          ref: o.branch ?? site.branch,
          pushed: pushRefs.get(site.name)?.commit,
        })),
      );
      looks.set(host, look);
      // As long as each fetch it runs may take on its own.
      const fetches = look.sites.filter((w) => !w.pushed).length;
      return { script: look.script, timeoutMs: FETCH_TIMEOUT_MS * Math.max(1, fetches) };
    };
    const runs = await s.walker.walk(
      s.targets,
      walkOptions(s, o.check ? undefined : { reason, opening: o.ifChanged ? opening : undefined }, true),
      (t, h) => {
        const look = looks.get(t.host.name);
        const found = h.opened && look ? firstLooks(h.opened.stdout, look) : undefined;
        return eachSite(t, done, (site) =>
          deploySite(s, h, t, site, o, pushRefs.get(site.name), found?.get(site.name)),
        );
      },
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

/** What a site's deploy (or rollback) works with on its host, and how it ends. */
export interface SiteFrame {
  s: HostSession;
  conn: Connection;
  signal: AbortSignal;
  host: string;
  site: Site;
  paths: SitePaths;
  /** The outcome so far: the commit and release are added once known. */
  base: SiteOutcome;
  /** The site's outcome; with `notice`, the site's webhook is told (`ok` when deployed or rolled back). */
  finish(r: Partial<SiteOutcome>, notice?: Partial<DeployNotice>): Promise<SiteOutcome>;
}

/**
 * Runs `body` for one site of a host, for deploy and rollback alike: the outcome's frame (host, site,
 * ref, duration), the webhook, and a step failing outside the plan (state, fetch) reported as the
 * site's failure (or its interruption), the live release untouched.
 */
export async function inSiteFrame(
  s: HostSession,
  { conn, signal }: HostWork,
  t: SiteTarget,
  site: Site,
  action: DeployNotice['action'],
  ref: string | undefined,
  body: (f: SiteFrame) => Promise<SiteOutcome>,
): Promise<SiteOutcome> {
  const started = Date.now();
  const host = t.host.name;
  const base: SiteOutcome = { host, site: site.name, status: 'failed', ref, durationMs: 0 };
  const finish = async (r: Partial<SiteOutcome>, notice?: Partial<DeployNotice>): Promise<SiteOutcome> => {
    const outcome = { ...base, ...r, durationMs: Date.now() - started };
    if (notice) {
      siteDone(s, site, {
        action,
        host,
        ok: outcome.status === 'deployed' || outcome.status === 'rolled-back',
        ref: outcome.ref ?? '',
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
  const paths = sitePaths(site, t.vars.sites_root);
  try {
    return await body({ s, conn, signal, host, site, paths, base, finish });
  } catch (err) {
    if (!(err instanceof StepFailure)) throw err;
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
}

/** Reads the site's state on its host (`state` step). */
export async function readSiteState(f: SiteFrame): Promise<SiteState> {
  const res = await runStep(
    f.conn,
    { title: 'state', command: stateScript(f.site, f.paths) },
    { signal: f.signal },
  );
  return parseState(f.paths, res.stdout);
}

/** A failure of the site that is no step's: said, and the site's outcome (the webhook told). */
function siteFailed(f: SiteFrame, step: string, message: string): Promise<SiteOutcome> {
  f.s.out.failed(f.host, f.site.name, step, message);
  return f.finish({ failedStep: step, message }, { detail: message });
}

/** The commit to deploy, in the host's repository; `hostLacks`: --check found it missing there. */
interface Fetched {
  commit: string;
  hostLacks: boolean;
}

/** How long a fetch or the sending of commits may take. */
const FETCH_TIMEOUT_MS = 600_000;

/** Sends the commits the host lacks (`fetch: push`) as a git bundle. */
async function sendCommits(f: SiteFrame, commit: string): Promise<void> {
  const { s, conn, signal, host, site, paths } = f;
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
        timeoutMs: FETCH_TIMEOUT_MS,
      },
      { signal },
    );
  } finally {
    await bundle.remove();
  }
  s.out.step(host, site.name, 'send commits', `ok (${Math.round(bundle.bytes / 1024)} KiB bundle)`);
}

/** `fetch: pull`: the ref is none of the repository's, as the host fetched it (ends the site). */
function unknownRef(f: SiteFrame, ref: string): Promise<SiteOutcome> {
  return siteFailed(
    f,
    'fetch',
    `"${ref}" is no branch, tag or commit of ${f.site.repo} (as fetched by ${f.host})`,
  );
}

/**
 * Step 2: `fetch: push` sends the commits the host lacks as a git bundle; `fetch: pull` has the host
 * fetch and resolves the ref there. With --check nothing is sent nor fetched. A ref the host cannot
 * resolve ends the site (the returned outcome).
 */
async function fetchCommit(
  f: SiteFrame,
  ref: string,
  pushed: ResolvedRef | undefined,
  check: boolean,
): Promise<Fetched | SiteOutcome> {
  const { conn, signal, site, paths } = f;
  if (pushed) {
    const commit = pushed.commit;
    const hostLacks = (await conn.exec(hostHasCommit(paths, commit))).code !== 0;
    if (!check && hostLacks) await sendCommits(f, commit);
    return { commit, hostLacks };
  }
  if (!check)
    await runStep(
      conn,
      { title: 'fetch', command: pullFetch(site, paths), timeoutMs: FETCH_TIMEOUT_MS },
      { signal },
    );
  const res = await conn.exec(resolveOnHost(paths, ref));
  if (res.code !== 0) return unknownRef(f, ref);
  return { commit: res.stdout.trim(), hostLacks: false };
}

/**
 * Step 2 from the site's first look (--if-changed, first-look.ts): the fetch (pull) already ran on the
 * host, a failure of it is the `fetch` step's as runStep reports it; the commits the host lacks (push)
 * are sent now.
 */
async function fetchAfterLook(
  f: SiteFrame,
  ref: string,
  v: ReturnType<typeof lookVerdict>,
): Promise<Fetched | SiteOutcome> {
  if (v.kind === 'fetch-failed') {
    const command = pullFetch(f.site, f.paths);
    if (f.signal.aborted) throw new Interrupted('fetch', command, f.signal);
    throw new StepFailure('fetch', command, v.code, v.output);
  }
  if (v.kind === 'unknown-ref') return unknownRef(f, ref);
  if (v.kind !== 'deploy') throw new Error(`the first look's verdict "${v.kind}" leads to no fetch`);
  if (v.hostLacks) await sendCommits(f, v.commit);
  return { commit: v.commit, hostLacks: v.hostLacks };
}

/** --if-changed: the live release runs the commit (said; the site's outcome). */
function unchangedSite(f: SiteFrame, state: SiteState, commit: string): Promise<SiteOutcome> {
  f.base.commit = commit;
  f.s.out.step(
    f.host,
    f.site.name,
    'unchanged',
    `${state.current} already runs ${commit.slice(0, 7)}: nothing to do`,
  );
  return f.finish({ status: 'unchanged', release: state.current });
}

/**
 * The live release runs `commit` (its record names it): --if-changed's test for a site deployed
 * without a first look (--check, or a look cut short). The first look asks the host the same
 * (commands.ts liveRunsCommit).
 */
function runsCommit(state: SiteState, commit: string): boolean {
  return !!state.current && parseReleaseRecord(state.record ?? '')?.commit === commit;
}

/**
 * A site about to change its host: the first look's script must not have released the lock (it does
 * only when every site of the host is unchanged, so this never fails but through a bug).
 */
function mustHoldLock(opened: Opened | undefined): void {
  if (opened?.released)
    throw new Error('the first look released the deploy lock, yet a site of the host is to change');
}

/** Steps 3-7 as a plan: the new release's record and what ships it. */
function planRelease(f: SiteFrame, state: SiteState, ref: string, commit: string): DeployPlan {
  const key = `${f.host}/${f.site.name}`;
  const record: ReleaseRecord = {
    release: releaseName(new Date(), commit),
    site: f.site.name,
    commit,
    branch: ref,
    time: new Date().toISOString(),
    by: f.s.by,
  };
  return deployPlan({
    site: f.site,
    paths: f.paths,
    state,
    record,
    env: f.s.envFiles.get(key)!,
    registryPassword: f.s.registryPasswords.get(key),
  });
}

/** --check: what the deploy would do, step by step; nothing changes on the host. */
function showDeployCheck(
  f: SiteFrame,
  plan: DeployPlan,
  state: SiteState,
  fetched: Fetched,
  ref: string,
  verbose: boolean,
): Promise<SiteOutcome> {
  f.s.out.step(
    f.host,
    f.site.name,
    'would deploy',
    `${ref} (${fetched.commit.slice(0, 7)}) as ${plan.release}; live: ${state.current ?? 'nothing yet'}`,
  );
  if (fetched.hostLacks)
    f.s.out.block('code     send the missing commits to the host repository (git bundle)');
  f.s.out.block(describePlan(plan, verbose).join('\n'));
  return f.finish({ status: 'checked' });
}

/** What a failed deploy left: which release serves, whether the migrations ran, what to check. */
export function failureMessage(site: Site, result: PlanResult, state: SiteState, release: string): string {
  const f = result.failure!;
  const previous = state.current ?? '(none)';
  const ran = result.migrated ? ' (the migrations RAN)' : '';
  const headline = runtimeOf(site).failureHeadline(f.step, f.code);
  let message: string;
  if (result.interrupted)
    message = `interrupted during "${f.step}": the previous release ${previous} still serves; the half-made release was removed${ran}`;
  else if (result.live)
    message = `the new release ${release} is live, but "${f.step}" failed after the switch`;
  else if (headline)
    message = `${headline}; the previous release ${previous} serves again and the half-made release was removed${ran}`;
  else if (result.migrated)
    message = `the migrations RAN (the database has the new schema), then "${f.step}" failed; the previous release ${previous} serves again`;
  else if (result.migrationFailed)
    message = `the migration failed; the previous release ${previous} serves again and the half-made release was removed (a migration that does not run in one transaction may have left changes in the database)`;
  else message = `the previous release ${previous} still serves; the half-made release was removed`;
  if (result.undoFailures.length)
    message += `; ${result.undoFailures.length} undo step(s) failed: check the host`;
  return message;
}

/** A plan that failed: said, written into the site's deploy log (best effort), the webhook told. */
async function deployFailed(
  f: SiteFrame,
  plan: DeployPlan,
  result: PlanResult,
  state: SiteState,
): Promise<SiteOutcome> {
  const step = result.failure!;
  const message = failureMessage(f.site, result, state, plan.release);
  f.s.out.step(f.host, f.site.name, 'outcome', message);
  const failed: DeployLogEntry = {
    ...plan.logEntry,
    outcome: result.interrupted ? 'interrupted' : 'failed',
    step: step.step,
  };
  f.s.out.logged(f.host, failed);
  await f.conn.exec(recordDeploy(f.paths, failed)).catch(() => undefined);
  return f.finish(
    {
      status: result.interrupted ? 'interrupted' : 'failed',
      failedStep: step.step,
      migrated: result.migrated,
      message,
    },
    { detail: step.report() },
  );
}

/**
 * One site of a host: state, fetch, plan, then --check's description or the plan run. With the site's
 * first look (--if-changed), its state and commit come from there.
 */
function deploySite(
  s: HostSession,
  work: HostWork,
  t: SiteTarget,
  site: Site,
  o: DeployCliOptions,
  pushed: ResolvedRef | undefined,
  look: SiteLook | undefined,
): Promise<SiteOutcome> {
  const ref = o.branch ?? site.branch;
  return inSiteFrame(s, work, t, site, 'deploy', ref, async (f) => {
    const state = look?.state ?? (await readSiteState(f));
    if (!state.provisioned)
      return siteFailed(
        f,
        'state',
        `site ${site.name} is not provisioned on ${f.host} (no ${f.paths.releases}): run \`verdandi provision ${s.ctx.env}\` with the sites role first`,
      );
    const verdict = look && lookVerdict(look);
    if (verdict?.kind === 'unchanged') return unchangedSite(f, state, verdict.commit);
    mustHoldLock(work.opened);
    if (!o.check) await removeHalfMade(s, f.conn, f, state, f.signal);

    const fetched = verdict
      ? await fetchAfterLook(f, ref, verdict)
      : await fetchCommit(f, ref, pushed, !!o.check);
    if ('status' in fetched) return fetched;
    f.base.commit = fetched.commit;

    if (o.ifChanged && !look && runsCommit(state, fetched.commit))
      return unchangedSite(f, state, fetched.commit);

    const plan = planRelease(f, state, ref, fetched.commit);
    f.base.release = plan.release;
    if (o.check) return showDeployCheck(f, plan, state, fetched, ref, !!o.verbose);

    const result = await runPlan(f.conn, plan, { host: f.host, site: site.name }, s.out, f.signal);
    if (!result.ok) return deployFailed(f, plan, result, state);
    s.out.logged(f.host, plan.logEntry);
    for (const w of result.warnings) s.out.warn(`${f.host}  ${site.name}  ${w}`);
    return f.finish({ status: 'deployed' }, {});
  });
}
