/**
 * Processes on the build machine, read from /proc. A pid alone is not an identity (pids are reused), so
 * the harness remembers a process as pid + start time and checks both before trusting or killing it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { delay } from './exec.js';

export interface ProcessId {
  pid: number;
  /** Start time in clock ticks since boot (field 22 of /proc/PID/stat). */
  start: string;
}

/** Fields of /proc/PID/stat after the command name (which may itself hold spaces and parentheses). */
export function parseStatFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

async function statFields(pid: number): Promise<string[] | undefined> {
  try {
    return parseStatFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

export async function processId(pid: number): Promise<ProcessId | undefined> {
  const fields = await statFields(pid);
  // After the name: state(0) ppid(1) ... starttime is field 22 of the line, index 19 here.
  return fields ? { pid, start: fields[19] } : undefined;
}

export function currentProcess(): Promise<ProcessId> {
  return processId(process.pid).then((id) => id ?? { pid: process.pid, start: '' });
}

/** True while that very process (same pid, same start time) runs; a zombie counts as gone. */
export async function isAlive(id: ProcessId | undefined): Promise<boolean> {
  if (!id) return false;
  const fields = await statFields(id.pid);
  return !!fields && fields[19] === id.start && fields[0] !== 'Z';
}

export async function commandLine(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/** Direct children of a process. */
export async function childrenOf(pid: number): Promise<number[]> {
  const children: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry));
    if (fields && Number(fields[1]) === pid) children.push(Number(entry));
  }
  return children;
}

export interface NspawnProcess {
  pid: number;
  machine: string;
}

/**
 * The systemd-nspawn processes running a machine on a base image of ours (any `<cacheDir>/base*`,
 * outdated ones included), whoever started them.
 */
export async function nspawnProcessesOn(cacheDir: string): Promise<NspawnProcess[]> {
  const ours = `--directory=${join(cacheDir, 'base')}`;
  const found: NspawnProcess[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await commandLine(Number(entry));
    if (!argv[0]?.endsWith('systemd-nspawn') || !argv.some((a) => a.startsWith(ours))) continue;
    const machine = argv.find((a) => a.startsWith('--machine='))?.slice('--machine='.length);
    if (machine) found.push({ pid: Number(entry), machine });
  }
  return found;
}

/** Sends `signal` if the process is still the one we mean; false when it is already gone. */
export async function signalProcess(id: ProcessId, signal: NodeJS.Signals): Promise<boolean> {
  if (!(await isAlive(id))) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Waits until the process is gone; false when it still runs at the deadline. */
export async function waitForExit(id: ProcessId, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await isAlive(id)) {
    if (Date.now() >= deadline) return false;
    await delay(100);
  }
  return true;
}
