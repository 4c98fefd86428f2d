/**
 * Throwaway local test hosts: Debian 12 machines with systemd as PID 1, sshd and apt, each a
 * systemd-nspawn container on an overlay of one cached base image, in its own network namespace at
 * 10.231.N.2. See TEST-HOSTS.md of the project for why it is done this way.
 *
 *   up(['web1', 'db1'])   boots them (or reuses running ones), resolves when sshd answers and systemd is up
 *   down(['web1']) / down('all')   powers off and removes everything of them
 *   list()                what runs, from any process
 *
 * Several processes (parallel test workers, a CLI) may do this at once: the state of every host is a
 * file in the cache dir, and every change to which hosts exist happens under one lock. Booting and
 * powering off (the slow parts) happen outside it, in parallel.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  editKnownHostsFile,
  hostPattern,
  knownHostsFile,
  withHostKeys,
  withoutHost,
} from '../connection/known-hosts.js';
import { UserError } from '../util/errors.js';
import { delay } from './exec.js';
import { type Mirrors, readGuestResolvConf, readMirrors } from './guest-config.js';
import { ensureBaseImage, ensureKey, publicKey } from './image.js';
import { writeLocalInventory } from './inventory.js';
import { withLock } from './lock.js';
import {
  findLeader,
  hostPublicKeys,
  prepareOverlay,
  startMachine,
  stopMachine,
  waitUntilReady,
} from './machine.js';
import {
  BASE_DIR_PATTERN,
  cacheDirFromEnv,
  hostPaths,
  type Layout,
  layout,
  slotOfVeth,
  validateHostName,
} from './naming.js';
import {
  createHostNetwork,
  ensureGlobalNetwork,
  listOurNamespaces,
  listOurVeths,
  removeGlobalNetwork,
  removeHostNetwork,
  removeNamespace,
  removeVeth,
} from './network.js';
import { checkMachine, type MachineChecks, realMachine } from './preflight.js';
import { currentProcess, isAlive, nspawnProcessesOn, type ProcessId, processId } from './processes.js';
import { type Progress, silentProgress } from './progress.js';
import {
  claimSlot,
  type HostState,
  hostDirNames,
  isLive,
  readAllStates,
  readState,
  writeState,
} from './state.js';

export type { Progress } from './progress.js';

/** How to reach a test host: what an inventory entry needs. */
export interface TestHost {
  name: string;
  address: string;
  port: number;
  user: string;
  /** Absolute path of the harness's private key. */
  key: string;
}

export interface HostStatus extends TestHost {
  slot: number;
  /** `stale`: left behind by a crashed run; the next `up` or `down` clears it. */
  status: 'running' | 'starting' | 'stopping' | 'stale';
  pid?: number;
}

export interface CommonOptions {
  /** Default: $VERDANDI_CACHE or /var/cache/verdandi. */
  cacheDir?: string;
  progress?: Progress;
  /**
   * The project to keep up to date, when set: its `inventories/local.yml` is rewritten with every running
   * host, and its `.verdandi/known_hosts` gets their actual host keys (and loses those of hosts stopped).
   */
  projectDir?: string;
  /** For tests of the error messages; default: the real machine. */
  checks?: MachineChecks;
}

export interface UpOptions extends CommonOptions {
  /** Stop hosts of these names first if they run, so the test gets a machine nobody touched. */
  fresh?: boolean;
  /** How long one host may take from `systemd-nspawn` to ready (default 3 minutes). */
  readyTimeoutMs?: number;
}

/** The private key that authenticates as root on every test host. */
export function keyPath(cacheDir?: string): string {
  return layout(cacheDir ?? cacheDirFromEnv()).keyFile;
}

/** The lock under which hosts are claimed, marked stopping and forgotten. */
export const hostsLock = (l: Layout) => join(l.locksDir, 'hosts');
const trashDir = (l: Layout) => join(l.cacheDir, 'trash');

/** Every test host's sshd listens on the standard port of its own address. */
const TEST_HOST_PORT = 22;

function toTestHost(state: HostState, key: string): TestHost {
  return { name: state.name, address: state.address, port: TEST_HOST_PORT, user: 'root', key };
}

function checkNames(names: readonly string[]): void {
  for (const name of names) validateHostName(name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new UserError(`test host ${duplicate} is named twice`);
}

// ---- up ----------------------------------------------------------------------------------------------

export async function up(names: readonly string[], opts: UpOptions = {}): Promise<TestHost[]> {
  checkNames(names);
  await checkMachine(opts.checks ?? realMachine);
  const l = layout(opts.cacheDir ?? cacheDirFromEnv());
  const progress = opts.progress ?? silentProgress;
  const mirrors = await readMirrors();
  const resolvConf = await readGuestResolvConf();
  const key = await ensureKey(l);
  const guestKey = await publicKey(l);
  await ensureBaseImage(l, mirrors, progress);
  if (opts.fresh) await down(names, { ...opts, projectDir: undefined });

  await withLock(hostsLock(l), () => clearLeftovers(l));
  const me = await currentProcess();
  const context: BootContext = {
    l,
    key,
    me,
    progress,
    readyTimeoutMs: opts.readyTimeoutMs ?? 180_000,
    files: { publicKey: guestKey, resolvConf, mirrors },
  };
  if (names.length > 0)
    progress.start(`starting test host${names.length > 1 ? 's' : ''} ${names.join(', ')}`);
  const outcomes = await Promise.allSettled(names.map((name) => obtain(context, name)));
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  await emptyTrash(l); // leftovers cleared on the way
  if (opts.projectDir) await updateProjectFiles(l, opts.projectDir);
  if (failure) {
    progress.fail(`starting ${names.join(', ')}`);
    throw failure.reason;
  }
  if (names.length > 0) progress.succeed(`test host${names.length > 1 ? 's' : ''} ${names.join(', ')} ready`);
  return outcomes.map((o) => (o as PromiseFulfilledResult<TestHost>).value);
}

interface BootContext {
  l: Layout;
  key: string;
  me: ProcessId;
  progress: Progress;
  readyTimeoutMs: number;
  files: { publicKey: string; resolvConf: string; mirrors: Mirrors };
}

/** A running host of that name: reused if it runs, booted if nobody has it, awaited if someone boots it. */
async function obtain(c: BootContext, name: string): Promise<TestHost> {
  const deadline = Date.now() + c.readyTimeoutMs + 60_000;
  for (;;) {
    const claim = await withLock(hostsLock(c.l), async () => {
      const existing = await readState(c.l, name);
      if (existing && (await isLive(existing))) return { state: existing, claimedNow: false };
      // A leftover of that name (its process died since we looked): clear it before reusing the name.
      if (existing) await unplug(existing);
      else await removeNamespace(name);
      await moveAside(c.l, name);
      const state = await claimSlot(c.l, name, c.me); // the claim on name and slot
      await ensureGlobalNetwork(c.l);
      return { state, claimedNow: true };
    });
    const { state } = claim;
    if (claim.claimedNow) return boot(c, state);
    if (state.phase === 'running') {
      c.progress.info(`${name} already runs at ${state.address}: reusing it`);
      return toTestHost(state, c.key);
    }
    // Another process (or call) is starting or stopping it: wait until it is up (reuse) or gone (start it).
    if (Date.now() > deadline) {
      throw new UserError(
        `test host ${name} stayed ${state.phase} by process ${state.owner.pid} for too long`,
      );
    }
    await delay(300);
  }
}

function sameProcess(a: ProcessId | undefined, b: ProcessId | undefined): boolean {
  return !!a && !!b && a.pid === b.pid && a.start === b.start;
}

async function boot(c: BootContext, claimed: HostState): Promise<TestHost> {
  const { name, slot } = claimed;
  let state = claimed;
  const started = Date.now();
  try {
    await prepareOverlay(c.l, { name, ...c.files });
    await removeVeth(slot); // a leftover on our new slot would block the veth pair
    await createHostNetwork(name, slot);
    const nspawn = await startMachine(c.l, name);
    state = await updateOwnState(c, { ...state, nspawn });
    const systemState = await waitUntilReady(
      c.l,
      { name, address: state.address, nspawn },
      c.key,
      c.readyTimeoutMs,
    );
    state = await updateOwnState(c, { ...state, phase: 'running', leader: await findLeader(nspawn) });
    c.progress.info(
      `${name} ready at ${state.address} in ${((Date.now() - started) / 1000).toFixed(1)} s${systemState === 'degraded' ? ' (systemd: degraded)' : ''}`,
    );
    return toTestHost(state, c.key);
  } catch (err) {
    // Leave nothing half made: the machine, its network, its directory.
    const current = await readState(c.l, name);
    if (current && sameProcess(current.owner, c.me)) {
      await unplug(current).catch(() => {});
      await withLock(hostsLock(c.l), () => forget(c.l, [name]));
      await emptyTrash(c.l);
    }
    throw err;
  }
}

/**
 * Records progress of a host this process is starting, unless its state says it is no longer ours
 * (`down` waits for a booting host rather than taking it, but an older version of Verdandi or a hand
 * edit may have changed it): then the boot is abandoned, and the machine is left to the new owner.
 */
async function updateOwnState(c: BootContext, next: HostState): Promise<HostState> {
  return withLock(hostsLock(c.l), async () => {
    const current = await readState(c.l, next.name);
    if (current?.phase !== 'starting' || !sameProcess(current.owner, c.me)) {
      if (next.nspawn) await stopMachine(next.nspawn, await findLeader(next.nspawn));
      throw new UserError(`test host ${next.name} was stopped by another process while it booted`);
    }
    await writeState(c.l, next);
    return next;
  });
}

// ---- down --------------------------------------------------------------------------------------------

/** Powers off and removes the named hosts (or every host), then the global network set-up if none is left. */
export async function down(which: readonly string[] | 'all', opts: CommonOptions = {}): Promise<string[]> {
  if (which !== 'all') checkNames(which);
  await checkMachine(opts.checks ?? realMachine);
  const l = layout(opts.cacheDir ?? cacheDirFromEnv());
  const progress = opts.progress ?? silentProgress;
  const me = await currentProcess();

  const { taken: targets, stuck } = await takeForStopping(l, which, me);
  if (targets.length > 0) progress.start(`stopping ${targets.map((t) => t.name).join(', ')}`);
  const outcomes = await Promise.allSettled(targets.map((state) => unplug(state)));
  // Forgotten even when unplugging failed: whatever is left has our naming, and the next `up` or
  // `down` sweeps it; a state kept here would only block the name.
  await withLock(hostsLock(l), async () => {
    await forget(
      l,
      targets.map((t) => t.name),
    );
    // `--all` also sweeps what no state accounts for (a host whose state file was deleted by hand).
    if (which === 'all') await clearLeftovers(l);
  });
  await emptyTrash(l);
  if (opts.projectDir) await updateProjectFiles(l, opts.projectDir, targets);
  const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failure) {
    progress.fail(`stopping ${targets.map((t) => t.name).join(', ')}`);
    throw failure.reason;
  }
  if (stuck.length > 0) {
    progress.fail(`stopping ${stuck.map((s) => s.name).join(', ')}`);
    throw new UserError(
      `test host${stuck.length > 1 ? 's' : ''} ${stuck.map((s) => `${s.name} (${s.phase} by process ${s.owner.pid})`).join(', ')} did not settle within ${BUSY_WAIT_MS / 60_000} minutes`,
      1,
      'run `verdandi testhost down` again once that process is done, or stop it',
    );
  }
  if (targets.length > 0) progress.succeed(`stopped ${targets.map((t) => t.name).join(', ')}`);
  return targets.map((t) => t.name);
}

/** How long `down` waits for a host that another process is booting or stopping. */
const BUSY_WAIT_MS = 4 * 60_000;

/**
 * Marks the chosen hosts `stopping` by this process, under the lock: from then on they are ours to
 * unplug and forget. A host that another live process is starting (or stopping) is not taken from it:
 * that process is still working in the host's directory (overlay, console log), and moving the
 * directory from under it made its boot fail with ENOENT. We wait until it has settled instead: running
 * (then we take it) or gone (nothing left to stop). Returns the hosts taken, and those still busy when
 * the wait ended.
 */
async function takeForStopping(
  l: Layout,
  which: readonly string[] | 'all',
  me: ProcessId,
): Promise<{ taken: HostState[]; stuck: HostState[] }> {
  const deadline = Date.now() + BUSY_WAIT_MS;
  const taken: HostState[] = [];
  let wanted = which;
  for (;;) {
    const busy = await withLock(hostsLock(l), async () => {
      const live = await clearLeftovers(l);
      const chosen = wanted === 'all' ? live : live.filter((s) => wanted.includes(s.name));
      const waitFor: HostState[] = [];
      for (const state of chosen) {
        if (state.phase !== 'running') {
          waitFor.push(state);
          continue;
        }
        const mine: HostState = { ...state, phase: 'stopping', owner: me };
        await writeState(l, mine);
        taken.push(mine);
      }
      return waitFor;
    });
    if (busy.length === 0 || Date.now() > deadline) return { taken, stuck: busy };
    // Only those we waited for: a host someone starts meanwhile is not part of this `down --all`.
    wanted = busy.map((s) => s.name);
    await delay(300);
  }
}

/** Stops the machine and removes its network. Slow (an orderly poweroff), so done outside the lock. */
async function unplug(state: HostState): Promise<void> {
  const leader =
    state.leader ??
    (state.nspawn && (await isAlive(state.nspawn)) ? await findLeader(state.nspawn) : undefined);
  await stopMachine(state.nspawn, leader);
  await removeHostNetwork(state.name, state.slot);
}

/**
 * Removes the hosts' directories (state, overlay, log) and, when no host is left, the global network
 * set-up. Callers hold the lock. The directories are moved aside (instant) and deleted later outside
 * the lock, so a new host of the same name never finds a half-deleted directory.
 */
async function forget(l: Layout, names: string[]): Promise<void> {
  for (const name of names) await moveAside(l, name);
  const remaining = await readAllStates(l);
  const live = [];
  for (const state of remaining) if (await isLive(state)) live.push(state);
  if (live.length === 0) await removeGlobalNetwork(l);
}

/** Moves a host's directory into the trash (atomic rename); nothing when there is none. */
async function moveAside(l: Layout, name: string): Promise<void> {
  await mkdir(trashDir(l), { recursive: true });
  const aside = join(
    trashDir(l),
    `${name}-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`,
  );
  await rename(hostPaths(l, name).dir, aside).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Deletes what `forget` moved aside: this process's, and that of processes that died before doing it. */
async function emptyTrash(l: Layout): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(trashDir(l));
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(/-(\d+)-\d+-[a-z0-9]+$/.exec(entry)?.[1]);
    const mine = pid === process.pid;
    if (mine || !(await processId(pid))) await rm(join(trashDir(l), entry), { recursive: true, force: true });
  }
}

/**
 * Clears everything with our naming that no live host accounts for: states of hosts whose process died,
 * host directories without a state, namespaces `vd-*`, veths `vdh*`, nspawn processes on our base image,
 * and the global rules when no host is live. Callers hold the lock. Returns the live hosts.
 */
async function clearLeftovers(l: Layout): Promise<HostState[]> {
  const live: HostState[] = [];
  const stale: string[] = [];
  for (const name of await hostDirNames(l)) {
    const state = await readState(l, name);
    if (state && (await isLive(state))) {
      live.push(state);
      continue;
    }
    if (state) await unplug(state);
    else await removeHostNetwork(name, undefined);
    stale.push(name);
  }
  const liveNames = new Set(live.map((s) => s.name));
  const liveSlots = new Set(live.map((s) => s.slot));
  for (const { name } of await listOurNamespaces()) {
    if (!liveNames.has(name)) await removeNamespace(name);
  }
  for (const veth of await listOurVeths()) {
    const slot = slotOfVeth(veth);
    if (slot !== undefined && !liveSlots.has(slot)) await removeVeth(slot);
  }
  for (const orphan of await nspawnProcessesOn(l.cacheDir)) {
    if (liveNames.has(orphan.machine)) continue;
    const id = await processId(orphan.pid);
    if (id) await stopMachine(id, await findLeader(id));
  }
  for (const name of stale) await moveAside(l, name);
  if (live.length === 0) {
    await removeGlobalNetwork(l);
    await discardOutdatedBaseImages(l);
  }
  return live;
}

/** Base images of an earlier version of the harness: deleted once no host can be running on them. */
async function discardOutdatedBaseImages(l: Layout): Promise<void> {
  for (const entry of await readdir(l.cacheDir).catch(() => [] as string[])) {
    if (!BASE_DIR_PATTERN.test(entry) || join(l.cacheDir, entry) === l.baseDir) continue;
    await mkdir(trashDir(l), { recursive: true });
    await rename(
      join(l.cacheDir, entry),
      join(trashDir(l), `${entry}-${process.pid}-${Date.now()}-old`),
    ).catch(() => {});
  }
}

// ---- list --------------------------------------------------------------------------------------------

export async function list(opts: { cacheDir?: string } = {}): Promise<HostStatus[]> {
  const l = layout(opts.cacheDir ?? cacheDirFromEnv());
  const statuses: HostStatus[] = [];
  for (const state of await readAllStates(l)) {
    const live = await isLive(state);
    statuses.push({
      ...toTestHost(state, l.keyFile),
      slot: state.slot,
      status: live ? state.phase : 'stale',
      pid: state.nspawn?.pid,
    });
  }
  return statuses.sort((a, b) => a.name.localeCompare(b.name));
}

/** The running hosts, as TestHosts. */
export async function running(opts: { cacheDir?: string } = {}): Promise<TestHost[]> {
  return (await list(opts))
    .filter((h) => h.status === 'running')
    .map(({ name, address, port, user, key }) => ({ name, address, port, user, key }));
}

/**
 * Brings the project's files in line with the running hosts: `inventories/local.yml` lists every one,
 * and `.verdandi/known_hosts` holds each one's actual host keys. A host booted at an address an earlier
 * host had comes with new keys, so the old lines for that address are replaced (else host-key checking
 * would refuse it as a changed key), and the addresses of the hosts just stopped lose theirs. Under the
 * lock, so two processes finishing at once write the newer picture last.
 */
async function updateProjectFiles(
  l: Layout,
  projectDir: string,
  stopped: readonly HostState[] = [],
): Promise<void> {
  await withLock(hostsLock(l), async () => {
    const hosts = await running({ cacheDir: l.cacheDir });
    const keys = await Promise.all(hosts.map((h) => hostPublicKeys(l, h.name)));
    editKnownHostsFile(knownHostsFile(projectDir), (text) => {
      let next = text;
      for (const h of stopped) next = withoutHost(next, hostPattern(h.address, TEST_HOST_PORT));
      hosts.forEach((h, i) => {
        next = withHostKeys(next, hostPattern(h.address, h.port), keys[i]);
      });
      return next;
    });
    await writeLocalInventory(projectDir, hosts);
  });
}
