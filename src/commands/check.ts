/**
 * `verdandi check <env> [playbook.ts...]`: everything that can be known without contacting a host,
 * for CI and pre-commit hooks. It is the plan of a run (plan.ts) without the run:
 *
 * - the inventory's syntax and structure, `--limit` and every play's host pattern;
 * - the secrets file is a readable OpenPGP message; it decrypts, when a password (or key) is at hand
 *   without asking, and every `secrets.x` used exists; without one, secret values stand in as
 *   placeholder strings, and a note names what could not be verified (the `secrets.x` used);
 * - every role found, and its vars validated for every host;
 * - every role's and play's `tasks()` and handlers evaluated for every host (templates render there);
 *   a role that gathers facts is evaluated without them, and when that fails it says so (a note,
 *   not an error: only a host can tell);
 * - how every host is reached: the ssh config read (`--ssh-config` or ~/.ssh/config), each jump chain
 *   resolved (an unknown jump host, a cycle, a chain too long, a ProxyJump naming nothing known: errors
 *   naming the inventory or ssh config line); what the ssh config asks that Verdandi does not do
 *   (`Match exec`) is a note.
 *
 * Every error is reported, not only the first. Exit 0 or 1.
 */
import { performance } from 'node:perf_hooks';
import { SshRouting } from '../connection/route.js';
import { loadSshConfig } from '../connection/ssh-config.js';
import type { Site } from '../deploy/site.js';
import { parseSitesVars, siteEnvValues } from '../deploy/targets.js';
import { interpolateHosts, type PlanContext, routeErrors } from '../engine/context.js';
import { loadPlaybook } from '../engine/loader.js';
import { declaresFacts, ErrorCollector, type HostPlan, planHosts, type Unit } from '../engine/plan.js';
import { playbookUnits, provisionUnits } from '../engine/units.js';
import { loadInventory, parseExtraVars, selectHosts } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { secretsWithoutAsking } from '../secrets/index.js';
import { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';

export interface CheckOptions {
  var?: string[];
  vaultPasswordFile?: string;
  limit?: string;
  json?: boolean;
  /** `--ssh-config`: the OpenSSH client configuration the routes are read from. */
  sshConfig?: string;
}

export interface CheckReport {
  ok: boolean;
  errors: Array<{ message: string; hint?: string }>;
  notes: string[];
  hosts: number;
  /** Roles and plays evaluated, over all hosts. */
  units: number;
  tasks: number;
  durationMs: number;
}

/** What a secret stands for when the secrets could not be decrypted: any key exists, as this string. */
const SECRET_PLACEHOLDER = '[secret: not decrypted]';

/** Secrets that could not be decrypted: every key reads as the placeholder, and is remembered. */
function placeholderSecrets(used: Set<string>): Record<string, unknown> {
  return new Proxy(
    {},
    {
      has: (_obj, key) => {
        if (typeof key === 'string') used.add(key);
        return typeof key === 'string';
      },
      get: (_obj, key) => {
        if (typeof key !== 'string') return undefined;
        used.add(key);
        return SECRET_PLACEHOLDER;
      },
    },
  );
}

interface CheckSecrets {
  secrets: Record<string, unknown>;
  /** The real secrets (or none at all): references to them are checked. */
  decrypted?: true;
  /** Words what could not be verified about secrets that were not decrypted (after everything ran). */
  unverified: () => string | undefined;
}

/**
 * What `verdandi deploy` will read from the secrets: each site's `env.secrets` must name a secret
 * (checked against the decrypted secrets; otherwise its names are read, so the note lists them). A host
 * whose `sites` var is wrong is reported by the sites role's check of its vars, not here.
 */
function checkSiteSecrets(ctx: PlanContext, checked: CheckSecrets, errors: ErrorCollector): void {
  for (const host of ctx.hosts) {
    const vars = ctx.vars.get(host.name);
    if (!vars || !('sites' in vars)) continue;
    let sites: Site[];
    try {
      sites = parseSitesVars(host, vars, ctx.sensitive.get(host.name)).sites;
    } catch {
      continue;
    }
    for (const site of sites) {
      if (checked.decrypted) {
        try {
          siteEnvValues(site, checked.secrets, ctx.env);
        } catch (err) {
          if (!(err instanceof UserError)) throw err;
          errors.add(new UserError(`host ${host.name}: ${err.message}`, 1, err.hint));
        }
      } else {
        // Reading the placeholders records the names for the note.
        for (const key of Object.values(site.env.secrets)) void checked.secrets[key];
      }
    }
  }
}

/**
 * The secrets when they open without asking anyone. When they do not, a placeholder map stands in, and
 * `unverified()` words what could not be checked (which `secrets.x` were used), once everything ran.
 */
async function secretsForCheck(
  projectDir: string,
  env: string,
  o: CheckOptions,
  errors: ErrorCollector,
): Promise<CheckSecrets> {
  const before = errors.errors.length;
  const found = await errors.attempt(() =>
    secretsWithoutAsking({ projectDir, env, vaultPasswordFile: o.vaultPasswordFile }),
  );
  const used = new Set<string>();
  // A file that failed to open is reported: every secret reference would only repeat that.
  if (errors.errors.length > before)
    return { secrets: placeholderSecrets(used), unverified: () => undefined };
  if (found === undefined) return { secrets: {}, decrypted: true, unverified: () => undefined };
  if (found.decrypted) return { secrets: found.secrets, decrypted: true, unverified: () => undefined };
  return {
    secrets: placeholderSecrets(used),
    unverified: () => {
      const names = [...used].sort();
      return (
        `${found.shown} is an OpenPGP message encrypted to ${found.lockedTo}, not decrypted: ${found.why}. ` +
        `Not verified: that it decrypts, and ${
          names.length
            ? `that it has ${names.map((n) => `secrets.${n}`).join(', ')} (their values stood in as placeholders)`
            : 'its content (nothing checked here reads a secret)'
        }`
      );
    },
  };
}

function countOf(plans: HostPlan[]) {
  return {
    units: plans.reduce((n, p) => n + p.units.length, 0),
    tasks: plans.reduce((n, p) => n + p.units.reduce((m, u) => m + u.tasks.length, 0), 0),
  };
}

/** Checks the environment (and the playbooks given); never contacts a host. */
export async function checkEnv(
  env: string,
  playbooks: string[],
  o: CheckOptions,
  cwd = process.cwd(),
): Promise<CheckReport> {
  const start = performance.now();
  const errors = new ErrorCollector();
  const notes: string[] = [];
  let hosts = 0;
  let units = 0;
  let tasks = 0;
  const done = (): CheckReport => ({
    ok: errors.errors.length === 0,
    errors: errors.errors.map((e) => ({
      message: redact(e.message),
      ...(e.hint ? { hint: redact(e.hint) } : {}),
    })),
    notes,
    hosts,
    units,
    tasks,
    durationMs: Math.round(performance.now() - start),
  });

  const extraVars = await errors.attempt(() => parseExtraVars(o.var ?? []));
  if (!extraVars) return done();
  const inventory = await errors.attempt(() => loadInventory(env, { cwd, extraVars }));
  if (!inventory) return done();
  const selected = await errors.attempt(() =>
    o.limit ? selectHosts(inventory, o.limit) : [...inventory.hosts.values()],
  );
  if (!selected) return done();
  const checkedSecrets = await secretsForCheck(inventory.projectDir, inventory.env, o, errors);
  const { secrets, unverified } = checkedSecrets;
  const { vars, sensitive, failed } = interpolateHosts(inventory, secrets, errors);
  const ctx: PlanContext = {
    env: inventory.env,
    projectDir: inventory.projectDir,
    inventory,
    // A host whose vars could not be rendered is reported already: its roles would only echo that.
    hosts: selected.filter((h: InventoryHost) => !failed.has(h.name)),
    secrets,
    vars,
    sensitive,
    extraVars,
  };
  hosts = selected.length;

  const withoutFacts = (unit: Unit, host: string, error?: UserError) => {
    // Declared facts are given to tasks() as an empty object: only a host can tell their values.
    const needs = declaresFacts(unit) ? 'declares facts' : 'gathers facts';
    notes.push(
      error
        ? `${unit.label}, host ${host}: ${needs}; its tasks() could not be evaluated without them (${redact(error.message)})`
        : `${unit.label}, host ${host}: ${needs}; its tasks() were evaluated without them`,
    );
  };
  const plans: HostPlan[] = [];
  plans.push(
    ...(await planHosts(ctx, await provisionUnits(ctx, errors), errors, { facts: new Map(), withoutFacts })),
  );
  for (const file of playbooks) {
    const playbook = await errors.attempt(() => loadPlaybook(file));
    if (!playbook) continue;
    for (const play of await playbookUnits(ctx, playbook, file, errors)) {
      plans.push(...(await planHosts(ctx, play.hosts, errors, { facts: new Map(), withoutFacts })));
    }
  }
  ({ units, tasks } = countOf(plans));
  const sshConfig = await errors.attempt(() => loadSshConfig(o.sshConfig));
  if (sshConfig) {
    errors.errors.push(...routeErrors(new SshRouting(sshConfig, inventory.hosts), selected));
    notes.push(...sshConfig.warnings);
  }
  checkSiteSecrets(ctx, checkedSecrets, errors);
  const secretsNote = unverified();
  if (secretsNote) notes.push(secretsNote);
  return done();
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `verdandi check`: prints the report (lines, or one JSON document) and returns the exit code. */
export async function check(env: string, playbooks: string[], o: CheckOptions): Promise<number> {
  const report = await checkEnv(env, playbooks, o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const e of report.errors) {
      process.stderr.write(`error: ${e.message}\n`);
      if (e.hint) process.stderr.write(`  → ${e.hint}\n`);
    }
    for (const n of report.notes) process.stdout.write(`note: ${n}\n`);
    const what = `${count(report.hosts, 'host')}, ${count(report.units, 'role and play', 'roles and plays')}, ${count(report.tasks, 'task')}`;
    const outcome = report.ok
      ? 'ok'
      : `${report.errors.length} error${report.errors.length === 1 ? '' : 's'}`;
    process.stdout.write(`checked ${what} in ${report.durationMs} ms: ${outcome}\n`);
  }
  return report.ok ? 0 : 1;
}
