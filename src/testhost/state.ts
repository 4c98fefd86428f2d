/**
 * What the harness knows about each host, kept in `<cache>/hosts/<name>/state.json` so that any process
 * (another test worker, the CLI in another terminal, the next CI run) can list and stop it.
 *
 * A host directory is also the claim on its slot: it is created under the harness lock, before the
 * namespace or anything else exists, so a second process never picks the same slot or name.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { guestAddress, hostPaths, type Layout, pickFreeSlot } from './naming.js';
import { isAlive, type ProcessId } from './processes.js';

export type HostPhase = 'starting' | 'running' | 'stopping';

export interface HostState {
  name: string;
  slot: number;
  address: string;
  phase: HostPhase;
  /** The process setting the host up or tearing it down (while starting / stopping). */
  owner: ProcessId;
  /** The systemd-nspawn process, once started. */
  nspawn?: ProcessId;
  /** The container's init (PID 1 inside): killing it ends every process of the host. */
  leader?: ProcessId;
  startedAt: string;
}

/** Writes through a temp file and rename, so a reader never sees half a state. */
export async function writeFileAtomic(path: string, content: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(temp, content, { mode });
  await rename(temp, path);
}

export async function writeState(l: Layout, state: HostState): Promise<void> {
  await writeFileAtomic(hostPaths(l, state.name).stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

export async function readState(l: Layout, name: string): Promise<HostState | undefined> {
  try {
    return JSON.parse(await readFile(hostPaths(l, name).stateFile, 'utf8')) as HostState;
  } catch {
    return undefined;
  }
}

/** Names of every host directory, with or without a readable state. */
export async function hostDirNames(l: Layout): Promise<string[]> {
  try {
    return (await readdir(l.hostsDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return [];
  }
}

export async function readAllStates(l: Layout): Promise<HostState[]> {
  const states: HostState[] = [];
  for (const name of await hostDirNames(l)) {
    const state = await readState(l, name);
    if (state) states.push(state);
  }
  return states;
}

/**
 * Whether a host is in use. While starting or stopping, someone is working on it: it is live as long
 * as that process lives. Once running, it is live as long as its nspawn process runs. Anything else is
 * a leftover of a crashed run.
 */
export async function isLive(state: HostState): Promise<boolean> {
  if (state.phase === 'running') return isAlive(state.nspawn);
  return isAlive(state.owner);
}

/**
 * Claims the lowest free slot for `name` by writing its state (phase starting, owned by `owner`).
 * Callers hold the harness lock and have cleared any leftover of that name.
 */
export async function claimSlot(l: Layout, name: string, owner: ProcessId): Promise<HostState> {
  const taken = (await readAllStates(l)).filter((s) => s.name !== name).map((s) => s.slot);
  const slot = pickFreeSlot(taken);
  const state: HostState = {
    name,
    slot,
    address: guestAddress(slot),
    phase: 'starting',
    owner,
    startedAt: new Date().toISOString(),
  };
  await writeState(l, state);
  return state;
}
