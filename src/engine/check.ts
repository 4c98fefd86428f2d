/**
 * `verdandi check <env> [playbook.ts...]`: everything that can be known without contacting a host,
 * for CI and pre-commit hooks. It is the plan of a run (plan.ts) without the run:
 *
 * - the inventory's syntax and structure, `--limit` and every play's host pattern;
 * - the secrets decrypt, when a password (or key) is at hand without asking, and every `secrets.x`
 *   the inventory uses exists; without one, secret values stand in as placeholder strings (said so);
 * - every role found, and its vars validated for every host;
 * - every role's and play's `tasks()` and handlers evaluated for every host (templates render there);
 *   a role that gathers facts is evaluated without them, and when that fails it says so (a note,
 *   not an error: only a host can tell).
 *
 * Every error is reported, not only the first. Exit 0 or 1.
 */
import { existsSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { loadInventory, parseExtraVars, selectHosts } from '../inventory/index.js';
import type { InventoryHost } from '../inventory/types.js';
import { loadSecrets } from '../secrets/index.js';
import { passwordWithoutPrompt } from '../secrets/password.js';
import { secretsPaths } from '../secrets/paths.js';
import type { UserError } from '../util/errors.js';
import { redact } from '../util/redact.js';
import { loadPlaybook } from './loader.js';
import { ErrorCollector, type HostPlan, planHosts, shown, type Unit } from './plan.js';
import { interpolateHosts, type PlanContext, playbookUnits, provisionUnits } from './session.js';

export interface CheckOptions {
  var?: string[];
  vaultPasswordFile?: string;
  limit?: string;
  json?: boolean;
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

function placeholderSecrets(): Record<string, unknown> {
  return new Proxy(
    {},
    {
      has: (_obj, key) => typeof key === 'string',
      get: (_obj, key) => (typeof key === 'string' ? SECRET_PLACEHOLDER : undefined),
    },
  );
}

/** The secrets when they can be opened without asking anyone; a placeholder map (and a note) if not. */
async function secretsForCheck(
  projectDir: string,
  env: string,
  o: CheckOptions,
  errors: ErrorCollector,
  notes: string[],
): Promise<Record<string, unknown>> {
  const paths = secretsPaths(projectDir, env);
  if (!existsSync(paths.asc)) return {};
  const opened = await errors.attempt(async () => {
    const canOpen = passwordWithoutPrompt(paths, o.vaultPasswordFile) || process.env.VERDANDI_PGP_KEY;
    return canOpen
      ? loadSecrets({ projectDir, env, vaultPasswordFile: o.vaultPasswordFile, interactive: false })
      : undefined;
  });
  if (opened) return opened;
  if (errors.errors.length === 0) {
    notes.push(
      `${shown(paths.asc)} not decrypted (no password without asking: --vault-password-file, ` +
        `${shown(paths.passwordFile)} or $VERDANDI_VAULT_PASSWORD): secrets.x references are not ` +
        'checked; secret values stand in as placeholder strings',
    );
  }
  return placeholderSecrets();
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
  const secrets = await secretsForCheck(inventory.projectDir, inventory.env, o, errors, notes);
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
    notes.push(
      error
        ? `${unit.label}, host ${host}: gathers facts; its tasks() could not be evaluated without them (${redact(error.message)})`
        : `${unit.label}, host ${host}: gathers facts; its tasks() were evaluated without them`,
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
