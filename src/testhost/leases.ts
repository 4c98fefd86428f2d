/**
 * Leases: which test files use which test host, so hosts can be shared between test files that run at
 * the same time, and stopped by the last one. A lease is a file `<cache>/leases/<name>/<id>.json`
 * naming the process that holds it; leases of dead processes (a killed test run) do not count.
 *
 * - exclusive (the default for tests): the holder gets a fresh host nobody else uses; another lease on
 *   the same name is an error (two test files chose the same host name).
 * - shared: any number of shared holders use the same running host.
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { down, type TestHost, type UpOptions, up } from './index.js';
import { withLock } from './lock.js';
import { cacheDirFromEnv, layout, validateHostName } from './naming.js';
import { currentProcess, isAlive, type ProcessId } from './processes.js';

interface Lease {
  id: string;
  holder: ProcessId;
  shared: boolean;
}

let counter = 0;

/** A lease id unique on this machine: process, start time, and a count within the process. */
export async function newLeaseId(): Promise<string> {
  const me = await currentProcess();
  counter += 1;
  return `${me.pid}-${me.start}-${counter}`;
}

function leaseDir(cacheDir: string, name: string): string {
  return join(layout(cacheDir).leasesDir, name);
}

function leaseLock(cacheDir: string, name: string): string {
  return join(layout(cacheDir).locksDir, `lease-${name}`);
}

/** The leases on `name` whose holder still runs; the others are deleted. */
async function liveLeases(cacheDir: string, name: string): Promise<Lease[]> {
  const dir = leaseDir(cacheDir, name);
  let files: string[];
  try {
    files = await readdir(dir);
  } catch {
    return [];
  }
  const live: Lease[] = [];
  for (const file of files) {
    const lease = await readFile(join(dir, file), 'utf8')
      .then((text) => JSON.parse(text) as Lease)
      .catch(() => undefined);
    if (lease && (await isAlive(lease.holder))) live.push(lease);
    else await rm(join(dir, file), { force: true });
  }
  return live;
}

export interface LeaseOptions extends UpOptions {
  shared?: boolean;
}

/** Takes a lease on each name and returns the running hosts (booted, or reused when shared). */
export async function acquire(
  leaseId: string,
  names: readonly string[],
  opts: LeaseOptions = {},
): Promise<TestHost[]> {
  const cacheDir = opts.cacheDir ?? cacheDirFromEnv();
  const shared = opts.shared === true;
  names.forEach(validateHostName);
  const holder = await currentProcess();
  return Promise.all(
    names.map((name) =>
      withLock(leaseLock(cacheDir, name), async () => {
        const others = (await liveLeases(cacheDir, name)).filter((l) => l.id !== leaseId);
        const conflict = others.find((l) => !shared || !l.shared);
        if (conflict) {
          throw new UserError(
            `test host ${name} is already used by process ${conflict.holder.pid}${conflict.shared ? ' (shared)' : ''}: give the hosts of each test file names of their own (prefix them with the file's purpose), or share them with { shared: true } in every file that uses them`,
          );
        }
        await mkdir(leaseDir(cacheDir, name), { recursive: true });
        const lease: Lease = { id: leaseId, holder, shared };
        await writeFile(join(leaseDir(cacheDir, name), `${leaseId}.json`), JSON.stringify(lease));
        // An exclusive holder gets a fresh machine, never a leftover of a killed run; shared ones reuse.
        const [host] = await up([name], { ...opts, cacheDir, fresh: !shared });
        return host;
      }),
    ),
  );
}

/** Gives the leases back; a host nobody holds any more is stopped. */
export async function release(
  leaseId: string,
  names: readonly string[],
  opts: { cacheDir?: string } = {},
): Promise<void> {
  const cacheDir = opts.cacheDir ?? cacheDirFromEnv();
  const failures: unknown[] = [];
  await Promise.all(
    names.map((name) =>
      withLock(leaseLock(cacheDir, name), async () => {
        await rm(join(leaseDir(cacheDir, name), `${leaseId}.json`), { force: true });
        if ((await liveLeases(cacheDir, name)).length === 0) {
          await rm(leaseDir(cacheDir, name), { recursive: true, force: true });
          await down([name], { cacheDir });
        }
      }).catch((err) => failures.push(err)),
    ),
  );
  if (failures.length > 0) throw failures[0];
}
