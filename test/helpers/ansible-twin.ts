/**
 * Ansible as the oracle: the same desired state applied by Verdandi on one test host and by
 * `ansible-playbook` on its twin (two fresh hosts booted from the same image), then both hosts' states
 * and both tools' per-task verdicts compared.
 *
 *   const twin = useAnsibleTwin(test, 'dif-files', CASES);   // boots dif-files-v and dif-files-a
 *   // then one ava test per case asserts its states and verdicts (and nothing else differs)
 *
 * Each test file is one twin pair and one list of cases; every phase is one Verdandi playbook and one
 * Ansible play holding the tasks of every case, run on both hosts at the same time:
 * 1. the cases' `setup` shell on both hosts, then the first run;
 * 2. a rerun (converged: nothing changes);
 * 3. the cases' `drift` shell on both hosts (the same hand edit), then a third run repairing it.
 * After the first and third runs one read-only script per host prints every probe of every case.
 *
 * A case lists where Verdandi deliberately differs from Ansible (`differences`): each listed state or
 * verdict must differ as stated, everything else must be equal.
 *
 * Tasks that need another machine (a swarm manager for a worker's join) get `peers`: hosts booted with
 * the twins, prepared by their own shell, in both tools' inventories (group `peers`) and known to the
 * twins by name (/etc/hosts), so both tools' tasks can name them alike.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ExecutionContext, TestFn } from 'ava';
import yaml from 'js-yaml';
import { type CliResult, removeProject, runCli } from './cli.js';
import { type TestHosts, useTestHosts } from './testhosts.js';

/** What the twins' state is compared on, as `kind:subject`. */
export type Probe =
  /** type, mode, owner, group; sha256 of a regular file, target of a link. */
  | `path:${string}`
  /** The same for every entry under a directory (itself included), sorted. */
  | `tree:${string}`
  /** `getent passwd` line and the groups of the user (`id -Gn`). */
  | `user:${string}`
  /** `getent group` line. */
  | `group:${string}`
  /** dpkg's status of the package. */
  | `package:${string}`
  /** `systemctl is-enabled` and `is-active`. */
  | `service:${string}`
  /** The running kernel's value. */
  | `sysctl:${string}`
  /** Any read-only shell command's output. */
  | `sh:${string}`;

export type Phase = 'first' | 'rerun' | 'drift';
export const PHASES: readonly Phase[] = ['first', 'rerun', 'drift'];
type Verdict = 'ok' | 'changed' | 'failed' | 'skipped' | 'ignored' | 'missing';

/** One task, as both tools write it: the same `name` in both. */
export interface TwinTask {
  name: string;
  /** The Verdandi task type and its options, without `name` (it is added). */
  verdandi: [type: string, options: Record<string, unknown>];
  /**
   * The Ansible task (module and its arguments), without `name`; or the tasks a role writes for it
   * (units copied, then `systemd`), named `<name> (1)`, `<name> (2)`...: their verdict is one, failed if
   * one failed, else changed if one changed.
   */
  ansible: Record<string, unknown> | Array<Record<string, unknown>>;
}

export interface ExpectedDifference {
  /** Why Verdandi differs here (the README's "Coming from Ansible" table says so too). */
  why: string;
}

export interface TwinCase {
  /** Unique in the file; a case uses only paths and names of its own. */
  name: string;
  /** Shell run as root on both hosts before the first run (files the tasks edit, ...). */
  setup?: string;
  tasks: TwinTask[];
  /** Shell run on both hosts after the rerun: the same hand edit for both tools to repair. */
  drift?: string;
  probes: Probe[];
  differences?: {
    /** Probes whose value differs between the twins, with Verdandi's and Ansible's value (after phase 1 and 3). */
    state?: Array<
      ExpectedDifference & {
        probe: Probe;
        verdandi: string;
        ansible: string;
        /** Only after this run (default: after both). */
        after?: 'first' | 'drift';
      }
    >;
    /** Verdicts that differ: the task, the phase, each tool's verdict. */
    verdicts?: Array<
      ExpectedDifference & { task: string; phase: Phase; verdandi: Verdict; ansible: Verdict }
    >;
  };
}

/** The state and verdicts of one tool's host. */
interface Side {
  /** Probe values after the first run and after the drift run. */
  state: Record<'first' | 'drift', Record<string, string>>;
  verdicts: Record<Phase, Map<string, Verdict>>;
  runs: Record<Phase, CliResult>;
}

export interface Twin {
  verdandi: Side;
  ansible: Side;
}

/** Every sent command and what it printed, for failure messages. */
function show(res: CliResult): string {
  return `exit ${res.code}\n${res.stdout.slice(-4000)}\n${res.stderr.slice(-4000)}`;
}

function run(
  command: string,
  args: string[],
  opts: { cwd: string; env: Record<string, string | undefined> },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15 * 60_000);
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ stdout, stderr, code: code ?? 1 });
    };
    child.on('error', reject);
    child.on('close', finish);
    // Ansible's ssh master (ControlPersist) inherits the pipes and keeps them open after ansible-playbook
    // exits: 'close' would wait for it. What was written is read within moments of the exit.
    child.on('exit', (code) => setTimeout(() => finish(code), 500));
  });
}

const SEPARATOR = '--dif-probe--';
const FAILED = '--dif-failed--';

/** The shell printing one probe (read only; a missing thing prints `missing`). */
function probeScript(probe: Probe): string {
  const colon = probe.indexOf(':');
  const kind = probe.slice(0, colon);
  const subject = probe.slice(colon + 1);
  const q = `'${subject.replaceAll("'", `'\\''`)}'`;
  const entry = `[ -e "$p" ] || [ -L "$p" ] || { echo "$p missing"; continue; }
    printf '%s %s\\n' "$p" "$(stat -c '%F %a %U %G' "$p")"
    if [ -L "$p" ]; then echo "-> $(readlink "$p")"; elif [ -f "$p" ]; then sha256sum < "$p" | cut -c1-64; fi`;
  switch (kind) {
    case 'path':
      return `for p in ${q}; do ${entry}; done`;
    case 'tree':
      return `[ -e ${q} ] || echo missing; find ${q} 2>/dev/null | LC_ALL=C sort | while read -r p; do ${entry}; done`;
    case 'user':
      return `getent passwd ${q} || echo missing; id -Gn ${q} 2>/dev/null | tr ' ' '\\n' | LC_ALL=C sort | tr '\\n' ' '; echo`;
    case 'group':
      return `getent group ${q} || echo missing`;
    case 'package':
      return `dpkg-query -W -f='\${Status}\\n' ${q} 2>/dev/null || echo missing`;
    case 'service':
      return `echo "enabled: $(systemctl is-enabled ${q} 2>&1)"; echo "active: $(systemctl is-active ${q} 2>&1)"`;
    case 'sysctl':
      return `sysctl -n ${q}`;
    case 'sh':
      return subject;
    default:
      throw new Error(`unknown probe kind in ${probe}`);
  }
}

/** One script printing every probe of every case, each after a separator line naming it. */
export function stateScript(cases: readonly TwinCase[]): string {
  const parts: string[] = [];
  for (const c of cases) {
    for (const probe of c.probes) {
      parts.push(
        `echo '${SEPARATOR} ${c.name} ${probe.replaceAll("'", '')}'`,
        `{ ${probeScript(probe)}; } 2>&1`,
      );
    }
  }
  return parts.join('\n');
}

export function parseState(output: string): Record<string, string> {
  const state: Record<string, string> = {};
  let key: string | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith(`${SEPARATOR} `)) {
      key = line.slice(SEPARATOR.length + 1);
      state[key] = '';
    } else if (key !== undefined) {
      state[key] += `${line}\n`;
    }
  }
  return Object.fromEntries(Object.entries(state).map(([k, v]) => [k, v.replace(/\n+$/, '')]));
}

const stateKey = (c: TwinCase, probe: Probe) => `${c.name} ${probe.replaceAll("'", '')}`;

function verdandiPlaybook(cases: readonly TwinCase[]): string {
  const tasks = cases.flatMap((c) =>
    c.tasks.map(({ name, verdandi: [type, options] }) => `${type}(${JSON.stringify({ name, ...options })})`),
  );
  const types = [...new Set(cases.flatMap((c) => c.tasks.map((t) => t.verdandi[0])))];
  return `import { definePlaybook, ${types.join(', ')} } from 'verdandi';
export default definePlaybook({ plays: [{ name: 'twin', hosts: 'twin', tasks: () => [
  ${tasks.join(',\n  ')},
] }] });
`;
}

function ansiblePlaybook(cases: readonly TwinCase[]): string {
  const tasks = cases.flatMap((c) =>
    c.tasks.flatMap((task) =>
      Array.isArray(task.ansible)
        ? task.ansible.map((part, i) => ({ name: `${task.name} (${i + 1})`, ...part }))
        : [{ name: task.name, ...task.ansible }],
    ),
  );
  // The twin only: the inventory may also list peers.
  return yaml.dump([{ name: 'twin', hosts: 'twin', gather_facts: false, tasks }], { lineWidth: -1 });
}

interface AnsibleJson {
  plays: Array<{
    tasks: Array<{
      task: { name: string };
      hosts: Record<string, { changed?: boolean; failed?: boolean; skipped?: boolean }>;
    }>;
  }>;
}

function ansibleVerdicts(res: CliResult, host: string): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>();
  let doc: AnsibleJson;
  try {
    doc = JSON.parse(res.stdout.slice(res.stdout.indexOf('{'))) as AnsibleJson;
  } catch {
    return verdicts;
  }
  for (const play of doc.plays) {
    for (const task of play.tasks) {
      const r = task.hosts[host];
      if (!r) continue;
      verdicts.set(
        task.task.name,
        r.failed ? 'failed' : r.skipped ? 'skipped' : r.changed ? 'changed' : 'ok',
      );
    }
  }
  return verdicts;
}

/** The verdict of the Ansible task(s) written for `task`. */
function ansibleVerdict(verdicts: Map<string, Verdict>, task: TwinTask): Verdict {
  if (!Array.isArray(task.ansible)) return verdicts.get(task.name) ?? 'missing';
  const parts = task.ansible.map((_, i) => verdicts.get(`${task.name} (${i + 1})`) ?? 'missing');
  for (const verdict of ['failed', 'missing', 'changed', 'ok'] as const) {
    if (parts.includes(verdict)) return verdict;
  }
  return parts[0] ?? 'missing';
}

interface VerdandiJson {
  hosts: Record<string, { tasks: Array<{ task: string; status: Verdict }> }>;
}

function verdandiVerdicts(res: CliResult, host: string): Map<string, Verdict> {
  const verdicts = new Map<string, Verdict>();
  let doc: VerdandiJson;
  try {
    doc = JSON.parse(res.stdout) as VerdandiJson;
  } catch {
    return verdicts;
  }
  for (const { task, status } of doc.hosts[host]?.tasks ?? []) {
    // The label is `<play> › <name>`.
    verdicts.set(task.slice(task.indexOf(' › ') + 3), status);
  }
  return verdicts;
}

/**
 * A whole project for each tool instead of the cases' tasks (a role and its port): each folder is
 * copied, its inventory written into the copy (`hosts.ini`, the host in `group`), and its playbook run
 * there.
 */
export interface TwinProjects {
  /** The inventory group the playbooks name (default `twin`). */
  group?: string;
  verdandi: { dir: string; playbook: string };
  ansible: { dir: string; playbook: string };
  /** Files of the controller the playbooks read, written into both copies (relative path → content). */
  files?: (localDir: string) => Record<string, string | Buffer>;
}

/** Hosts the twins' tasks need besides themselves, shared by both twins. */
export interface TwinPeers {
  /** Test-host names, in both inventories (group `peers`) and in the twins' /etc/hosts. */
  names: string[];
  /** Shell run as root on each peer after boot, before the cases' setup (a swarm init...). */
  setup?: string;
}

/**
 * Boots the twin pair `<prefix>-v` (Verdandi) and `<prefix>-a` (Ansible) and runs the three phases.
 * `makeCases` gets a directory of the controller for the cases' local files (templates, archives),
 * removed after the tests.
 */
export function useAnsibleTwin(
  test: TestFn,
  prefix: string,
  makeCases: (localDir: string) => readonly TwinCase[],
  projects?: TwinProjects,
  peers?: TwinPeers,
) {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const localDir = join(dir, 'files');
  mkdirSync(localDir);
  const cases = makeCases(localDir);
  const names = new Set<string>();
  for (const c of cases) {
    if (names.has(c.name)) throw new Error(`twin case ${c.name} is listed twice`);
    names.add(c.name);
  }
  const V = `${prefix}-v`;
  const A = `${prefix}-a`;
  const peerNames = peers?.names ?? [];
  const hosts: TestHosts = useTestHosts(test, [V, A, ...peerNames]);
  let twin: Twin | undefined;

  /** Setup or drift failures by case, as `<host>: <what the shell said>`. */
  const shellErrors = new Map<string, string[]>();

  /** Each case's `setup` or `drift` shell, on both hosts, in one ssh call each; failures are kept by case. */
  const shellOnBoth = async (what: 'setup' | 'drift'): Promise<void> => {
    const script = cases
      .filter((c) => c[what])
      .map(
        (c) =>
          `if ! out=$( (set -e
${c[what]}
) 2>&1 ); then printf '%s\n' ${JSON.stringify(`${FAILED} ${c.name}`)} "$out" | tr '\n' ' '; echo; fi`,
      )
      .join('\n');
    if (!script) return;
    await Promise.all(
      [V, A].map(async (host) => {
        const r = await hosts.ssh(host, script);
        for (const line of `${r.stdout}${r.code === 0 ? '' : `${FAILED} * exit ${r.code} ${r.stderr}`}`.split(
          '\n',
        )) {
          if (!line.startsWith(`${FAILED} `)) continue;
          const [name, ...rest] = line.slice(FAILED.length + 1).split(' ');
          shellErrors.set(name, [...(shellErrors.get(name) ?? []), `${what} on ${host}: ${rest.join(' ')}`]);
        }
      }),
    );
  };

  /** Each peer's setup, and its name in both twins' /etc/hosts; a failure stops the file's tests. */
  const preparePeers = async (peerHosts: Array<{ name: string; address: string }>): Promise<void> => {
    const etcHosts = peerHosts.map((p) => `echo '${p.address} ${p.name}' >> /etc/hosts`).join('\n');
    const results = await Promise.all([
      ...(etcHosts ? [V, A].map((host) => hosts.ssh(host, etcHosts).then((r) => ({ host, r }))) : []),
      ...(peers?.setup
        ? peerHosts.map((p) => hosts.ssh(p.name, `set -e\n${peers.setup}`).then((r) => ({ host: p.name, r })))
        : []),
    ]);
    const failed = results.filter(({ r }) => r.code !== 0);
    if (failed.length > 0) {
      throw new Error(
        failed
          .map(({ host, r }) => `peer setup on ${host}: exit ${r.code}\n${r.stdout}\n${r.stderr}`)
          .join('\n'),
      );
    }
  };

  const gather = async (host: string): Promise<Record<string, string>> => {
    const r = await hosts.ssh(host, stateScript(cases));
    return parseState(r.stdout);
  };

  // Serial: it waits for useTestHosts' hook that boots the hosts (ava runs other hooks concurrently).
  test.serial.before(async (t) => {
    t.timeout(20 * 60_000);
    const v = hosts.get(V);
    const a = hosts.get(A);
    let vProject = dir;
    let aProject = dir;
    let vPlaybook = join(dir, 'twin.ts');
    let aPlaybook = join(dir, 'twin.yml');
    if (projects) {
      vProject = join(dir, 'verdandi');
      aProject = join(dir, 'ansible');
      cpSync(projects.verdandi.dir, vProject, { recursive: true });
      cpSync(projects.ansible.dir, aProject, { recursive: true });
      for (const [path, content] of Object.entries(projects.files?.(localDir) ?? {})) {
        for (const project of [vProject, aProject]) {
          mkdirSync(dirname(join(project, path)), { recursive: true });
          writeFileSync(join(project, path), content);
        }
      }
      vPlaybook = join(vProject, projects.verdandi.playbook);
      aPlaybook = join(aProject, projects.ansible.playbook);
    } else {
      writeFileSync(vPlaybook, verdandiPlaybook(cases));
      writeFileSync(aPlaybook, ansiblePlaybook(cases));
    }
    const vInventory = join(vProject, projects ? 'hosts.ini' : 'verdandi.ini');
    const aInventory = join(aProject, projects ? 'hosts.ini' : 'ansible.ini');
    const group = projects?.group ?? 'twin';
    const line = (h: { name: string; address: string; user: string; key: string }) =>
      `${h.name} ansible_host=${h.address} ansible_user=${h.user} ansible_ssh_private_key_file=${h.key}\n`;
    const peerHosts = peerNames.map((name) => hosts.get(name));
    const peersGroup = peerHosts.length > 0 ? `[peers]\n${peerHosts.map(line).join('')}` : '';
    writeFileSync(vInventory, `[${group}]\n${line(v)}${peersGroup}`);
    writeFileSync(aInventory, `[${group}]\n${line(a)}${peersGroup}`);
    // As the benchmark runs Ansible: no facts, no interpreter discovery, pipelining, host keys never kept.
    writeFileSync(
      join(dir, 'ansible.cfg'),
      [
        '[defaults]',
        'host_key_checking = False',
        'gathering = explicit',
        'interpreter_python = /usr/bin/python3',
        'retry_files_enabled = False',
        'deprecation_warnings = False',
        '[ssh_connection]',
        'pipelining = True',
        'ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null',
        '',
      ].join('\n'),
    );
    const controlDir = mkdtempSync(join(tmpdir(), 'dif-cp-'));
    const ansibleEnv = {
      ...process.env,
      ANSIBLE_CONFIG: join(dir, 'ansible.cfg'),
      ANSIBLE_STDOUT_CALLBACK: 'json',
      ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
      ANSIBLE_NOCOLOR: '1',
    };
    const runAnsible = () =>
      run('ansible-playbook', ['-i', aInventory, aPlaybook], {
        cwd: aProject,
        env: ansibleEnv,
      });
    const runVerdandi = () =>
      runCli(['run', vInventory, vPlaybook, '--json', '--host-key-checking=off'], {
        cwd: vProject,
        timeoutMs: 15 * 60_000,
      });
    const both = async () => {
      const [rv, ra] = await Promise.all([runVerdandi(), runAnsible()]);
      return { rv, ra };
    };

    // The peers are prepared while the twins run the cases' setup (which must not need the peers).
    await Promise.all([preparePeers(peerHosts), shellOnBoth('setup')]);
    const first = await both();
    const [vFirst, aFirst] = await Promise.all([gather(V), gather(A)]);
    const rerun = await both();
    await shellOnBoth('drift');
    const repaired = await both();
    const [vDrift, aDrift] = await Promise.all([gather(V), gather(A)]);
    twin = {
      verdandi: {
        state: { first: vFirst, drift: vDrift },
        runs: { first: first.rv, rerun: rerun.rv, drift: repaired.rv },
        verdicts: {
          first: verdandiVerdicts(first.rv, V),
          rerun: verdandiVerdicts(rerun.rv, V),
          drift: verdandiVerdicts(repaired.rv, V),
        },
      },
      ansible: {
        state: { first: aFirst, drift: aDrift },
        runs: { first: first.ra, rerun: rerun.ra, drift: repaired.ra },
        verdicts: {
          first: ansibleVerdicts(first.ra, A),
          rerun: ansibleVerdicts(rerun.ra, A),
          drift: ansibleVerdicts(repaired.ra, A),
        },
      },
    };
    // Ansible's ssh masters of this run.
    for (const socket of readdirSync(controlDir)) {
      await run('ssh', ['-O', 'exit', '-o', `ControlPath=${join(controlDir, socket)}`, 'twin'], {
        cwd: dir,
        env: process.env,
      });
    }
    removeProject(controlDir);
  });

  test.after.always(() => removeProject(dir));

  const get = (): Twin => {
    if (!twin) throw new Error('the twin runs did not happen (did test.before fail?)');
    return twin;
  };

  /** Both tools exited 0 in every phase. */
  function assertRuns(t: ExecutionContext): void {
    const { verdandi, ansible } = get();
    // Every failed run in one assertion: ava shows only a test's first failed assertion.
    const failed = PHASES.flatMap((phase) =>
      [
        { tool: 'verdandi', res: verdandi.runs[phase] },
        { tool: 'ansible-playbook', res: ansible.runs[phase] },
      ]
        .filter(({ res }) => res.code !== 0)
        .map(({ tool, res }) => `${tool}, ${phase} run: ${show(res)}`),
    );
    t.deepEqual(failed, [], 'both tools exit 0 in every phase');
  }

  /**
   * The case's states and verdicts are equal on the twins, except its listed differences, which must
   * be as listed. The rerun changes nothing (unless a listed difference says otherwise).
   */
  function assertCase(t: ExecutionContext, c: TwinCase): void {
    const { verdandi, ansible } = get();
    t.deepEqual(shellErrors.get(c.name) ?? [], [], 'the setup and drift shell ran');
    t.deepEqual(shellErrors.get('*') ?? [], [], 'the setup and drift scripts ran');
    const stateDiffs = c.differences?.state ?? [];
    for (const when of ['first', 'drift'] as const) {
      for (const probe of c.probes) {
        const key = stateKey(c, probe);
        const v = verdandi.state[when][key];
        const a = ansible.state[when][key];
        t.not(v, undefined, `${key} was probed`);
        const expected = stateDiffs.find((d) => d.probe === probe && (d.after ?? when) === when);
        if (expected) {
          t.is(v, expected.verdandi, `Verdandi's ${probe} after the ${when} run (${expected.why})`);
          t.is(a, expected.ansible, `Ansible's ${probe} after the ${when} run (${expected.why})`);
        } else {
          t.is(
            v,
            a,
            `${probe} after the ${when} run: Verdandi's host (actual) differs from Ansible's (expected)`,
          );
        }
      }
    }
    const verdictDiffs = c.differences?.verdicts ?? [];
    for (const phase of PHASES) {
      for (const task of c.tasks) {
        const v = verdandi.verdicts[phase].get(task.name) ?? 'missing';
        const a = ansibleVerdict(ansible.verdicts[phase], task);
        const expected = verdictDiffs.find((d) => d.task === task.name && d.phase === phase);
        if (expected) {
          t.deepEqual(
            { verdandi: v, ansible: a },
            { verdandi: expected.verdandi, ansible: expected.ansible },
            `${task.name}, ${phase} run (${expected.why})`,
          );
        } else {
          t.is(
            v,
            a,
            `${task.name}, ${phase} run: Verdandi's verdict (actual) differs from Ansible's (expected)`,
          );
          if (phase === 'rerun') t.is(v, 'ok', `${task.name}: the rerun changes nothing`);
        }
      }
    }
  }

  return { cases, hosts, get, assertRuns, assertCase };
}
