/**
 * `verdandi maintenance on|off <env> <site> [--message TEXT]`: the site's maintenance page by hand, on
 * every host that runs it. The switch is the nginx role's flag file (nginx answers 503 with the page
 * while it exists, no reload). A flag set by hand holds `by-hand=yes`, `since=` (the host's clock) and
 * `by=`: `verdandi status` shows them, and a deploy that ends leaves such a maintenance on (commands.ts
 * `maintenanceOff`). `--message` writes the site's own page (the text HTML-escaped, marked as Verdandi's);
 * `off` removes that page again, a page of the user's own is never touched.
 *
 * Idempotent (on twice: one change), under the host's deploy lock (never halfway through a deploy's
 * migration), each host's change a `step` event (the terminal, --json, the run history).
 */
import { ConnectionPool } from '../engine/connection-pool.js';
import { type ContextOptions, loadRunContext } from '../engine/context.js';
import { runOutputs } from '../engine/outputs.js';
import { DEFAULT_LOCK_WAIT_SECONDS, type HostWalkOptions, Walker } from '../engine/walker.js';
import type { InventoryHost } from '../inventory/types.js';
import { UserError } from '../util/errors.js';
import { escapeHtml } from '../util/html.js';
import { DEFAULT_FORKS } from '../util/pool.js';
import { sh } from '../util/shell.js';
import { MAINTENANCE_BY_HAND } from './commands.js';
import { deployerName } from './git.js';
import { DeployOutput } from './output.js';
import type { Site } from './site.js';
import { type SitePaths, sitePaths } from './site-base.js';
import { parseSitesVars } from './targets.js';

export interface MaintenanceCliOptions extends ContextOptions, Partial<HostWalkOptions> {
  message?: string;
  json?: boolean;
  verbose?: boolean;
}

/** Marks a page written by `maintenance on --message`: `off` removes only such a page. */
export const PAGE_MARK = '<!-- verdandi maintenance on -->';

/** The page for `--message`: the text escaped, its line breaks kept. */
export function maintenancePage(message: string): string {
  const text = escapeHtml(message).replace(/\r?\n/g, '<br>\n');
  return [
    PAGE_MARK,
    '<!doctype html>',
    '<html lang="en">',
    '<head><meta charset="utf-8"><title>Maintenance in progress</title></head>',
    '<body style="font-family: sans-serif; max-width: 40em; margin: 4em auto;">',
    '<h1>Maintenance in progress</h1>',
    `<p>${text}</p>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

/** Exit status of `onScript` when the site has a page of the user's own that --message would replace. */
export const OWN_PAGE_EXIT = 3;

/**
 * Switches maintenance on by hand. Stdin: the page (empty without --message). Prints `changed=yes|no`
 * and `since=<when it went on>`.
 */
export function onScript(paths: SitePaths, by: string): string {
  const flag = paths.maintenanceFlag;
  const page = paths.maintenancePage;
  return [
    sh`mkdir -p "$(dirname ${flag})" "$(dirname ${page})" || exit 1`,
    'vd_new=$(mktemp) || exit 1',
    'cat > "$vd_new"',
    'vd_changed=no',
    'if [ -s "$vd_new" ]; then',
    sh`  if [ -f ${page} ] && ! grep -qsF ${PAGE_MARK} ${page}; then rm -f "$vd_new"; echo "${page} is a page of your own: --message would replace it" >&2; exit ${OWN_PAGE_EXIT}; fi`,
    sh`  if ! cmp -s "$vd_new" ${page}; then install -m 0644 "$vd_new" ${page} || exit 1; vd_changed=yes; fi`,
    sh`elif grep -qsF ${PAGE_MARK} ${page}; then`,
    // Without --message: the default page again (not the message of an earlier `on`).
    sh`  rm -f ${page}; vd_changed=yes`,
    'fi',
    'rm -f "$vd_new"',
    sh`if ! grep -qsx ${MAINTENANCE_BY_HAND} ${flag}; then`,
    sh`  printf '%s\\nsince=%s\\nby=%s\\n' ${MAINTENANCE_BY_HAND} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${by} > ${`${flag}.tmp`} && mv -f ${`${flag}.tmp`} ${flag} || exit 1`,
    '  vd_changed=yes',
    'fi',
    'echo "changed=$vd_changed"',
    sh`sed -n 's/^since=/since=/p' ${flag}`,
  ].join('\n');
}

/** Switches maintenance off (by hand or a deploy's left behind); prints `changed=yes|no`. */
export function offScript(paths: SitePaths): string {
  const flag = paths.maintenanceFlag;
  const page = paths.maintenancePage;
  return [
    'vd_changed=no',
    sh`if [ -e ${flag} ]; then rm -f ${flag} || exit 1; vd_changed=yes; fi`,
    sh`if grep -qsF ${PAGE_MARK} ${page}; then rm -f ${page}; fi`,
    'echo "changed=$vd_changed"',
  ].join('\n');
}

interface MaintenanceTarget {
  host: InventoryHost;
  site: Site;
  paths: SitePaths;
}

export interface MaintenanceOutcome {
  host: string;
  site: string;
  state: 'on' | 'off';
  changed: boolean;
  /** When maintenance went on (the host's clock, UTC). */
  since?: string;
}

export function parseSwitch(state: string): 'on' | 'off' {
  if (state === 'on' || state === 'off') return state;
  throw new UserError(
    `maintenance takes on or off, got "${state}"`,
    1,
    'verdandi maintenance on|off <env> <site>',
  );
}

export async function maintenance(
  state: 'on' | 'off',
  env: string,
  siteName: string,
  o: MaintenanceCliOptions,
): Promise<number> {
  if (state === 'off' && o.message !== undefined)
    throw new UserError('--message goes with maintenance on', 1);
  if (o.message !== undefined && o.message.trim() === '')
    throw new UserError('--message is empty', 1, 'say what the visitors should read, or leave it out');
  const ctx = await loadRunContext(env, o);
  const targets: MaintenanceTarget[] = [];
  const known = new Set<string>();
  for (const host of ctx.hosts) {
    const vars = parseSitesVars(host, ctx.vars.get(host.name) ?? host.vars, ctx.sensitive.get(host.name));
    for (const s of vars.sites) known.add(s.name);
    const site = vars.sites.find((s) => s.name === siteName);
    if (site) targets.push({ host, site, paths: sitePaths(site, vars.sites_root) });
  }
  if (targets.length === 0) {
    throw new UserError(
      `no host of ${ctx.env}${o.limit ? ` matching --limit ${o.limit}` : ''} has a site named "${siteName}"`,
      1,
      `known sites: ${[...known].sort().join(', ') || 'none'}`,
    );
  }
  const by = await deployerName();
  const events = await runOutputs({
    json: !!o.json,
    verbose: !!o.verbose,
    check: false,
    warnsToStderr: true,
  });
  const out = new DeployOutput(events, { verbose: !!o.verbose });
  const walker = new Walker(
    {
      command: 'maintenance',
      env: ctx.env,
      check: false,
      events,
      conns: new ConnectionPool(ctx.connectOptions, DEFAULT_FORKS),
      hostVars: ctx.vars,
      forks: DEFAULT_FORKS,
      onInterrupt: 'abort',
    },
    targets.map((t) => t.host.name),
  );
  const page = o.message === undefined ? '' : maintenancePage(o.message);
  const step = `maintenance ${state}`;
  const outcomes: MaintenanceOutcome[] = [];
  const notProvisioned: string[] = [];
  try {
    await walker.walk(
      targets,
      {
        serial: o.serial,
        maxFailPercentage: 100,
        lock: {
          reason: `maintenance ${state} ${ctx.env} ${siteName}`,
          by,
          waitSeconds: o.lockWaitSeconds ?? DEFAULT_LOCK_WAIT_SECONDS,
          breakLock: !!o.breakLock,
        },
      },
      async (t, { conn }) => {
        const host = t.host.name;
        const vhost = await conn.exec(sh`[ -f ${t.paths.vhost} ] && echo yes; true`);
        if (vhost.stdout.trim() !== 'yes') {
          notProvisioned.push(host);
          out.failed(
            host,
            siteName,
            step,
            `    ${siteName} has no nginx site on ${host} yet (${t.paths.vhost}): run verdandi provision ${ctx.env} first`,
            'NOT PROVISIONED',
          );
          return { ok: true, result: undefined };
        }
        const res =
          state === 'on'
            ? await conn.exec(onScript(t.paths, by), { stdin: page })
            : await conn.exec(offScript(t.paths));
        if (res.code !== 0) {
          out.failed(host, siteName, step, `    ${(res.stderr || res.stdout).trim()} (exit ${res.code})`);
          return { ok: false, result: undefined };
        }
        const changed = /^changed=yes$/m.test(res.stdout);
        const since = /^since=(.+)$/m.exec(res.stdout)?.[1];
        outcomes.push({ host, site: siteName, state, changed, ...(since ? { since } : {}) });
        out.step(
          host,
          siteName,
          step,
          `${changed ? 'changed' : 'unchanged'}${since ? ` (on since ${since})` : ''}`,
        );
        return { ok: true, result: undefined };
      },
    );
    out.json({ maintenance: outcomes });
    const code = await walker.finish();
    // A site not provisioned yet is the user's mistake (exit 1), unless a host did worse.
    return code === 0 && notProvisioned.length > 0 ? 1 : code;
  } finally {
    await walker.close();
    events.close();
  }
}
