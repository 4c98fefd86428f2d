/** What `verdandi testhost up|down|list` do; the options are declared in src/cli/commands/testhost.ts. */
import { UserError } from '../util/errors.js';
import { down, list, up } from './index.js';
import { LOCAL_INVENTORY } from './inventory.js';
import { validateHostName } from './naming.js';
import { terminalProgress } from './progress.js';

/** Most hosts one `up` boots: each is a whole Debian system. */
export const MAX_COUNT = 50;

/**
 * The names `up` boots: the names given; or with --count N, NAME1..NAMEN (NAME: the one name given,
 * default `test`); with neither, `test1`.
 */
export function namesForUp(names: readonly string[] = [], count?: string): string[] {
  if (count === undefined) {
    const chosen = names.length > 0 ? [...names] : ['test1'];
    chosen.forEach(validateHostName);
    return chosen;
  }
  if (!/^\d+$/.test(count) || Number(count) < 1 || Number(count) > MAX_COUNT) {
    throw new UserError(
      `--count must be a whole number from 1 to ${MAX_COUNT}, not ${JSON.stringify(count)}`,
    );
  }
  if (names.length > 1) {
    throw new UserError(
      `--count takes one base name (it boots NAME1..NAME${count}), not ${names.length} names: drop --count or give one name`,
    );
  }
  const base = names[0] ?? 'test';
  const chosen = Array.from({ length: Number(count) }, (_, i) => `${base}${i + 1}`);
  chosen.forEach(validateHostName);
  return chosen;
}

/** What `down` stops: the names given, or 'all' with --all; one of them is required. */
export function targetsForDown(names: readonly string[] = [], all = false): string[] | 'all' {
  if (all && names.length > 0) {
    throw new UserError('give either host names or --all, not both');
  }
  if (all) return 'all';
  if (names.length === 0) {
    throw new UserError(
      'which test hosts? give their names (`verdandi testhost down web1`) or --all (see `verdandi testhost list`)',
    );
  }
  names.forEach(validateHostName);
  return [...names];
}

export async function upCommand(names: string[] | undefined, options: { count?: string }): Promise<void> {
  const chosen = namesForUp(names, options.count);
  const projectDir = process.cwd();
  const hosts = await up(chosen, { progress: await terminalProgress(), projectDir });
  const width = Math.max(...hosts.map((h) => h.name.length));
  for (const h of hosts) {
    process.stdout.write(`${h.name.padEnd(width)}  ${h.address}  ssh -i ${h.key} ${h.user}@${h.address}\n`);
  }
  process.stdout.write(`inventory: ${LOCAL_INVENTORY} (try: verdandi ping local)\n`);
}

export async function downCommand(names: string[] | undefined, options: { all?: boolean }): Promise<void> {
  const targets = targetsForDown(names, options.all === true);
  const stopped = await down(targets, { progress: await terminalProgress(), projectDir: process.cwd() });
  if (targets !== 'all') {
    for (const name of targets.filter((n) => !stopped.includes(n))) {
      process.stderr.write(`${name} was not running\n`);
    }
  }
  process.stdout.write(
    stopped.length > 0 ? `stopped: ${stopped.join(', ')}\n` : 'no test host was running\n',
  );
}

export async function listCommand(options: { json?: boolean }): Promise<void> {
  const hosts = await list();
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ hosts }, null, 2)}\n`);
    return;
  }
  if (hosts.length === 0) {
    process.stdout.write('no test hosts (start one with `verdandi testhost up`)\n');
    return;
  }
  const width = Math.max(4, ...hosts.map((h) => h.name.length));
  process.stdout.write(`${'NAME'.padEnd(width)}  ${'ADDRESS'.padEnd(12)}  STATUS\n`);
  for (const h of hosts) {
    process.stdout.write(`${h.name.padEnd(width)}  ${h.address.padEnd(12)}  ${h.status}\n`);
  }
}
