/**
 * The two hosts of the latency benchmark (latency.ts) that Verdandi alone runs on, since Ansible has no
 * counterpart of their work (it would mean rewriting the built-in roles and `deploy` in Ansible):
 *
 *   hl-latstg   the staging roles of the main benchmark (STAGING_ROLES: nginx, supervisor, postgres,
 *               docker): a no-change `verdandi provision`
 *   hl-latsite  the sample site of `verdandi demo` (examples/sample-site, nginx → uvicorn under
 *               supervisor → PostgreSQL), deployed from a git repository on this machine (nothing
 *               outside it is reachable): a deploy of a new commit, and `deploy --if-changed` of the
 *               commit the host already runs
 *
 * Both are converged straight to their hosts (untimed) before the link is slowed down; the timed runs
 * go through the proxy like the twin play's.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { demoInventory, makeSampleRepo } from '../src/commands/demo.js';
import type { BenchHost, Log } from './hosts.js';
import { runOk, seconds } from './proc.js';
import { STAGING_ROLES } from './spec.js';
import { allOk, type RunOutcome, runVerdandiProvision, verdandi, writeVerdandiInventory } from './tools.js';

export const STAGING_HOST = 'hl-latstg';
export const SITE_HOST = 'hl-latsite';

/** Where the site hosts' inventories and the sample site's repository live. */
export interface SiteProject {
  project: string;
  repo: string;
  /** The site host as booted: its address names the site's nginx vhost, whichever way it is reached. */
  site: BenchHost;
}

/** The staging roles on `host` (reached as given: straight or through a proxy). */
export const stagingInventory = (project: string, host: BenchHost, name: string) =>
  writeVerdandiInventory(project, [host], STAGING_ROLES, name);

/**
 * `verdandi demo`'s inventory of the site host, reached at `via` (its own address, or a proxy's port):
 * the site itself (vhost names included) stays the same, so a run through the proxy finds nothing the
 * straight one left different.
 */
export async function siteInventory(p: SiteProject, via: BenchHost, name: string): Promise<string> {
  const demo = demoInventory({ name: p.site.name, address: p.site.address, key: p.site.key ?? '' }, p.repo);
  const entry = {
    address: via.address,
    port: via.port,
    user: via.user,
    ...(via.key ? { key: via.key } : {}),
  };
  const doc = { ...demo, hosts: { [p.site.name]: entry } };
  const file = join(p.project, name);
  await writeFile(file, `# Written by the benchmark driver.\n${yaml.dump(doc, { lineWidth: -1 })}`);
  return file;
}

/** `verdandi deploy` of the sample site's `main`; `--if-changed` does nothing when the host runs it. */
export const runDeploy = (inventory: string, ifChanged: boolean) =>
  verdandi(['deploy', inventory, '--branch', 'main', ...(ifChanged ? ['--if-changed'] : [])]);

/** A new commit on `main`: the next deploy has a release to make. */
export async function newCommit(repo: string, n: number): Promise<void> {
  const git = (...args: string[]) =>
    runOk('git', ['-c', 'user.name=Verdandi bench', '-c', 'user.email=bench@verdandi.invalid', ...args], {
      cwd: repo,
    });
  await writeFile(join(repo, 'CHANGES.md'), `bench release ${n}\n`);
  await git('add', 'CHANGES.md');
  await git('commit', '--quiet', '-m', `bench release ${n}`);
}

/**
 * Untimed, straight to the hosts: the staging roles converged on `staging`; on `site`, the demo's
 * roles provisioned and the sample site deployed once. Every timed run then starts from a converged host.
 */
export async function convergeSiteHosts(p: SiteProject, staging: BenchHost, log: Log): Promise<void> {
  await makeSampleRepo(p.repo);
  const mustSucceed = (what: string, run: RunOutcome) => {
    if (!allOk(run) || run.code !== 0)
      throw new Error(
        `${what} failed (exit ${run.code}): ${run.output.trim().split('\n').slice(-20).join('\n')}`,
      );
    log(`${what}: ${seconds(run.ms)} s`);
  };
  const siteDirect = await siteInventory(p, p.site, 'site-direct.yml');
  const [stagingRun, siteRun] = await Promise.all([
    stagingInventory(p.project, staging, 'staging-direct.yml').then((inv) => runVerdandiProvision(inv, 1)),
    runVerdandiProvision(siteDirect, 1),
  ]);
  mustSucceed(`converging ${staging.name} (${STAGING_ROLES.join(', ')})`, stagingRun);
  mustSucceed(`provisioning ${p.site.name} (the demo's roles)`, siteRun);
  mustSucceed(`the first deploy of the sample site on ${p.site.name}`, await runDeploy(siteDirect, false));
}
