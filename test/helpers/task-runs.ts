/**
 * Running task types end to end on one test host, the way a user does: a playbook written to a temp
 * project, run through the real CLI. `lifecycle` is the life every task type must have: `--check` names
 * the change and leaves the host as it was, the run converges it, the next run changes nothing, and a
 * change made by hand is repaired.
 *
 *   const runs = taskRuns(hosts, 'tb-files', dir);
 *   const file = runs.playbook('replace', ['replace'], [`replace(${JSON.stringify(options)})`]);
 *   await runs.lifecycle(t, { file, label: /replace \/etc\/x/, state: 'cat /etc/x', converged, drift });
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { type CliResult, runCli } from './cli.js';
import type { TestHosts } from './testhosts.js';

interface JsonReport {
  hosts: Record<string, { changed: number; failed: number; ok: number }>;
}

export interface Lifecycle {
  /** The playbook's file name (from `playbook`). */
  file: string;
  /** What the output says of the task: its label and reason. */
  label: RegExp;
  /** Shell printing the state the task manages (run as root on the host). */
  state: string;
  /** What `state` prints once the task converged. */
  converged: string;
  /** Shell changing the state by hand. */
  drift: string;
}

export function taskRuns(hosts: TestHosts, host: string, dir: string) {
  let inventoryFile: string | undefined;
  /** Written once: tests running at the same time would otherwise read it while it is rewritten. */
  function inventory(): string {
    if (inventoryFile !== undefined) return inventoryFile;
    const h = hosts.get(host);
    const file = join(dir, 'hosts.ini');
    writeFileSync(
      file,
      `[targets]\n${host} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`,
    );
    inventoryFile = file;
    return file;
  }

  /** Writes a playbook running `tasks` (TypeScript expressions) on the host; returns its file name. */
  function playbook(name: string, imports: string[], tasks: string[]): string {
    const file = `${name}.ts`;
    writeFileSync(
      join(dir, file),
      `import { definePlaybook, ${imports.join(', ')} } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'targets', tasks: () => [
  ${tasks.join(',\n  ')},
] }] });
`,
    );
    return file;
  }

  const run = (file: string, ...extra: string[]): Promise<CliResult> =>
    runCli(['run', inventory(), join(dir, file), '--host-key-checking=off', ...extra], { cwd: dir });

  /** Runs `command` as root on the host; its stdout, or a thrown error when it fails. */
  const ssh = async (command: string, input?: string): Promise<string> => {
    const result = await hosts.ssh(host, command, { input, timeoutMs: 10 * 60_000 });
    if (result.code !== 0) throw new Error(`${command} failed (${result.code}): ${result.stderr}`);
    return result.stdout;
  };

  /** Runs the playbook with --json: exit code 0, no failure, and how many tasks changed the host. */
  async function changedBy(t: ExecutionContext, file: string): Promise<number> {
    const res = await run(file, '--json');
    t.is(res.code, 0, res.stdout + res.stderr);
    const report = (JSON.parse(res.stdout) as JsonReport).hosts[host];
    t.is(report.failed, 0);
    return report.changed;
  }

  async function lifecycle(t: ExecutionContext, opts: Lifecycle): Promise<void> {
    const { file, label, state } = opts;
    const fresh = await ssh(state);
    const check = await run(file, '--check');
    t.is(check.code, 0, check.stdout + check.stderr);
    t.regex(check.stdout, new RegExp(`would change\\s+${host}\\s+.*${label.source}`));
    t.is(await ssh(state), fresh, '--check changed nothing');

    const first = await run(file);
    t.is(first.code, 0, first.stdout + first.stderr);
    t.regex(first.stdout, new RegExp(`changed\\s+${host}\\s+.*${label.source}`));
    t.is(await ssh(state), opts.converged);

    t.is(await changedBy(t, file), 0, 'a second run changes nothing');

    await ssh(opts.drift);
    t.not(await ssh(state), opts.converged, 'the hand edit changed the host');
    t.is(await changedBy(t, file), 1, 'the drift is repaired');
    t.is(await ssh(state), opts.converged);
  }

  return { playbook, run, ssh, changedBy, lifecycle };
}
