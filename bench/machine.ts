/** The facts of the machine a benchmark ran on, for the report. */
import { cpus, freemem, release, totalmem } from 'node:os';
import { loadAverage, runTimed } from './proc.js';

export async function machineInfo(): Promise<Record<string, string>> {
  const version = async (cmd: string, args: string[]) => {
    const r = await runTimed(cmd, args).catch(() => undefined);
    return r ? `${r.stdout}${r.stderr}`.trim().split('\n')[0] : 'not found';
  };
  return {
    nproc: String(cpus().length),
    cpu: cpus()[0]?.model ?? '?',
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB (free at start: ${(freemem() / 2 ** 30).toFixed(1)} GiB)`,
    kernel: release(),
    node: process.version,
    ansible: await version('ansible-playbook', ['--version']),
    openssh: await version('ssh', ['-V']),
  };
}

/** One line of the machine's facts, as the reports print it. */
export function machineLine(m: Record<string, string>): string {
  return `${m.nproc} cores (${m.cpu}), ${m.memory}, kernel ${m.kernel}; Node ${m.node}; ${m.ansible}; ${m.openssh}.`;
}

/** A benchmark run's header: the command that produced it (`npm run <script> -- <args>`), when, where, the load. */
export async function runMeta(script: string) {
  const args = process.argv.slice(2);
  return {
    command: `npm run ${script}${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`,
    startedAt: new Date().toISOString(),
    machine: await machineInfo(),
    load: [await loadAverage(), 0] as [number, number],
  };
}
