/**
 * The three contestants, each run as a user would run it and timed from spawn to exit:
 * - Verdandi: `verdandi run <inventory> work.ts --json` (the built CLI, the playbook loaded through tsx);
 * - Ansible: `ansible-playbook ansible/work.yml` with an ansible.cfg tuned as its docs advise
 *   (pipelining, ControlPersist, forks = host count, no fact gathering, no interpreter discovery);
 * - raw ssh: `raw-check.sh` over one plain `ssh` call per host, all hosts in parallel.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import yaml from 'js-yaml';
import { words } from '../src/util/shell.js';
import { type BenchHost, sshArgs } from './hosts.js';
import { type Finished, mapLimit, runTimed } from './proc.js';
import { BENCH_PORT } from './spec.js';

const benchDir = fileURLToPath(new URL('.', import.meta.url));
export const repoRoot = join(benchDir, '..');
export const verdandiBin = join(repoRoot, 'bin', 'verdandi.js');
export const verdandiPlaybook = join(benchDir, 'work.ts');
export const ansiblePlaybook = join(benchDir, 'ansible', 'work.yml');

/** What one run of a tool did, per host. */
export interface HostOutcome {
  ok: number;
  changed: number;
  failed: number;
  unreachable: boolean;
  /** SSH round trips (Verdandi: exec calls; Ansible: ssh invocations; raw: 1). */
  roundTrips: number;
}

export interface RunOutcome {
  tool: 'verdandi' | 'ansible' | 'raw';
  /** Wall-clock time of the whole command (all hosts), ms. */
  ms: number;
  /** Verdandi's own `durationMs` (after startup and playbook loading). */
  innerMs?: number;
  /** CPU time the command used on this machine (all its processes; the hosts' side is not counted). */
  cpuMs?: number;
  /** Verdandi's peak resident memory, KiB. */
  maxRssKb?: number;
  /** Exit code of the command. */
  code: number;
  hosts: Map<string, HostOutcome>;
  /** Output kept for a failure report. */
  output: string;
}

/**
 * The outcome of `ssh … true` run on every host at once (`results` in the order of `hosts`, started at
 * `started`): the floor of a benchmark, one handshake and one command per host.
 */
export function floorOutcome(hosts: BenchHost[], results: Finished[], started: bigint): RunOutcome {
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return {
    tool: 'raw',
    ms,
    cpuMs: results.reduce((sum, r) => sum + (r.cpuMs ?? 0), 0),
    code: results.find((r) => r.code !== 0)?.code ?? 0,
    hosts: new Map(
      hosts.map((h, i) => [
        h.name,
        {
          ok: results[i].code === 0 ? 1 : 0,
          changed: 0,
          failed: results[i].code === 0 ? 0 : 1,
          unreachable: results[i].code === 255,
          roundTrips: 1,
        },
      ]),
    ),
    output: results.map((r, i) => `${hosts[i].name}: exit ${r.code} ${r.stderr}`).join('\n'),
  };
}

/** Every host finished without failure and was reached. */
export function allOk(run: RunOutcome): boolean {
  return run.hosts.size > 0 && [...run.hosts.values()].every((h) => h.failed === 0 && !h.unreachable);
}

export function totalChanged(run: RunOutcome): number {
  return [...run.hosts.values()].reduce((sum, h) => sum + h.changed, 0);
}

// ---- Verdandi ----------------------------------------------------------------------------------------

/** A Verdandi inventory of these hosts; with `roles`, one group `bench` giving them those roles. */
export async function writeVerdandiInventory(
  dir: string,
  hosts: BenchHost[],
  roles?: string[],
  name = 'verdandi-inventory.yml',
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, name);
  const doc = {
    hosts: Object.fromEntries(
      hosts.map((h) => [
        h.name,
        { address: h.address, port: h.port, user: h.user, ...(h.key ? { key: h.key } : {}) },
      ]),
    ),
    ...(roles ? { groups: { bench: { hosts: hosts.map((h) => h.name), roles } } } : {}),
  };
  await writeFile(file, `# Written by the benchmark driver.\n${yaml.dump(doc, { lineWidth: -1 })}`);
  return file;
}

interface VerdandiJson {
  hosts: Record<
    string,
    { ok: number; changed: number; failed: number; skipped: number; unreachable: boolean; roundTrips: number }
  >;
  durationMs: number;
}

export async function runVerdandi(inventory: string, forks: number, message: string): Promise<RunOutcome> {
  return verdandi([
    'run',
    inventory,
    verdandiPlaybook,
    '--forks',
    String(forks),
    '--var',
    `bench_message=${message}`,
  ]);
}

/** `verdandi provision`: the roles the inventory gives each host; `vars` as `--var key=value`. */
export function runVerdandiProvision(
  inventory: string,
  forks: number,
  vars: Record<string, string | number> = {},
): Promise<RunOutcome> {
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}=${v}`]);
  return verdandi(['provision', inventory, '--forks', String(forks), ...varArgs]);
}

/**
 * Any Verdandi command with `--json`, timed, its CPU and peak memory measured. Host keys are not
 * checked unless asked for: the benchmark's hosts are fresh for every run of the driver.
 */
export async function verdandi(
  command: string[],
  hostKeyChecking: 'off' | 'accept-new' = 'off',
): Promise<RunOutcome> {
  const args = [verdandiBin, ...command, '--json', '--host-key-checking', hostKeyChecking];
  const res = await runTimed(process.execPath, args, { cwd: repoRoot, timeoutMs: 900_000, cpu: true });
  let json: VerdandiJson | undefined;
  try {
    json = JSON.parse(res.stdout) as VerdandiJson;
  } catch {
    json = undefined;
  }
  // With --json, what went wrong is on stderr; stdout is the summary already parsed.
  const output = json ? res.stderr : `${res.stdout}\n${res.stderr}`;
  const hosts = new Map<string, HostOutcome>();
  for (const [name, h] of Object.entries(json?.hosts ?? {})) {
    hosts.set(name, {
      ok: h.ok,
      changed: h.changed,
      failed: h.failed,
      unreachable: h.unreachable,
      roundTrips: h.roundTrips,
    });
  }
  return {
    tool: 'verdandi',
    ms: res.ms,
    innerMs: json?.durationMs,
    cpuMs: res.cpuMs,
    maxRssKb: res.maxRssKb,
    code: res.code,
    hosts,
    output,
  };
}

// ---- Ansible -----------------------------------------------------------------------------------------

export interface AnsibleFiles {
  dir: string;
  config: string;
  inventory: string;
  /** Every ssh invocation of a run is appended here by the counting wrapper. */
  sshLog: string;
}

/**
 * The ssh that Ansible runs: appends its arguments to $BENCH_SSH_LOG, then becomes the real ssh.
 * It costs one dash exec (about a millisecond) per invocation, next to Ansible's 100+ ms per task.
 */
const COUNTING_SSH = `#!/bin/sh
printf '%s\\n' "$*" >> "$BENCH_SSH_LOG"
exec ssh "$@"
`;

/**
 * `sshCommonArgs`: more ssh options for every host (`ansible_ssh_common_args`), such as a ProxyJump;
 * `timeoutS`: Ansible's connection timeout (its default is 10 s).
 */
export async function writeAnsibleFiles(
  dir: string,
  hosts: BenchHost[],
  forks: number,
  sshCommonArgs?: string,
  timeoutS?: number,
): Promise<AnsibleFiles> {
  await mkdir(dir, { recursive: true });
  const inventory = join(dir, 'hosts.ini');
  const lines = ['# Written by the benchmark driver.', '[bench]'];
  for (const h of hosts) {
    lines.push(
      [
        h.name,
        `ansible_host=${h.address}`,
        `ansible_port=${h.port}`,
        `ansible_user=${h.user}`,
        ...(h.key ? [`ansible_ssh_private_key_file=${h.key}`] : []),
        ...(sshCommonArgs ? [`ansible_ssh_common_args=${JSON.stringify(sshCommonArgs)}`] : []),
      ].join(' '),
    );
  }
  await writeFile(inventory, `${lines.join('\n')}\n`);
  const wrapper = join(dir, 'ssh-counting');
  await writeFile(wrapper, COUNTING_SSH, { mode: 0o755 });
  const config = join(dir, 'ansible.cfg');
  await writeFile(
    config,
    [
      '# Written by the benchmark driver: Ansible as fast as its documentation makes it.',
      '[defaults]',
      `inventory = ${inventory}`,
      `forks = ${forks}`,
      'host_key_checking = False',
      'gathering = explicit',
      '# No interpreter discovery: it would cost one more ssh call per host.',
      'interpreter_python = /usr/bin/python3',
      'retry_files_enabled = False',
      'deprecation_warnings = False',
      ...(timeoutS === undefined ? [] : [`timeout = ${timeoutS}`]),
      '',
      '[ssh_connection]',
      'pipelining = True',
      '# Host keys change with every fresh test host: never record them.',
      'ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null',
      `ssh_executable = ${wrapper}`,
      '',
    ].join('\n'),
  );
  return { dir, config, inventory, sshLog: join(dir, 'ssh.log') };
}

const RECAP = /^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/;

/**
 * One ansible-playbook run. Each run gets a new ControlPath directory, so it opens its connections
 * cold, like Verdandi and raw ssh do (a master left by the previous run would skip the handshake);
 * the masters are closed after the run.
 */
export async function runAnsible(
  files: AnsibleFiles,
  hosts: BenchHost[],
  message: string,
  runId: string,
  playbook = ansiblePlaybook,
): Promise<RunOutcome> {
  const controlDir = join(files.dir, `cp-${runId}`);
  await mkdir(controlDir, { recursive: true });
  await rm(files.sshLog, { force: true });
  await writeFile(files.sshLog, '');
  const env = {
    ...process.env,
    ANSIBLE_CONFIG: files.config,
    ANSIBLE_SSH_CONTROL_PATH_DIR: controlDir,
    ANSIBLE_NOCOLOR: '1',
    BENCH_SSH_LOG: files.sshLog,
  };
  const res = await runTimed(
    'ansible-playbook',
    [playbook, '-e', JSON.stringify({ bench_message: message })],
    { cwd: files.dir, env, timeoutMs: 1_800_000, cpu: true },
  );
  const invocations = (await readFile(files.sshLog, 'utf8')).split('\n').filter(Boolean);
  const hostsOut = new Map<string, HostOutcome>();
  for (const line of res.stdout.split('\n')) {
    const m = RECAP.exec(line);
    if (!m || !hosts.some((h) => h.name === m[1])) continue;
    const host = hosts.find((h) => h.name === m[1])!;
    hostsOut.set(m[1], {
      ok: Number(m[2]),
      changed: Number(m[3]),
      unreachable: Number(m[4]) > 0,
      failed: Number(m[5]),
      roundTrips: invocations.filter((args) => invokes(args, host)).length,
    });
  }
  await closeControlMasters(controlDir);
  return {
    tool: 'ansible',
    ms: res.ms,
    cpuMs: res.cpuMs,
    code: res.code,
    hosts: hostsOut,
    output: `${res.stdout}\n${res.stderr}`,
  };
}

/**
 * Whether one logged ssh invocation went to `host`: its address, and its port when several hosts share
 * an address (ports of one machine, or of the latency proxies on 127.0.0.1): Ansible passes
 * `-o Port=N` for an `ansible_port`.
 */
function invokes(args: string, host: BenchHost): boolean {
  const words = args.split(' ');
  return words.includes(host.address) && (host.port === 22 || words.includes(`Port=${host.port}`));
}

async function closeControlMasters(controlDir: string): Promise<void> {
  const sockets = await readdir(controlDir).catch(() => [] as string[]);
  await mapLimit(sockets, 10, (socket) =>
    runTimed('ssh', ['-O', 'exit', '-o', `ControlPath=${join(controlDir, socket)}`, 'bench'], {
      timeoutMs: 10_000,
    }),
  );
  await rm(controlDir, { recursive: true, force: true });
}

// ---- raw ssh -----------------------------------------------------------------------------------------

const render = (template: string, vars: Record<string, unknown>) =>
  Handlebars.compile(template, { noEscape: true, strict: true })(vars);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The sha256 of both files as the work wants them on this host (the arguments of raw-check.sh). */
export async function expectedHashes(host: BenchHost, message: string): Promise<[string, string]> {
  const app = await readFile(join(benchDir, 'templates', 'app.conf.hbs'), 'utf8');
  const site = await readFile(join(benchDir, 'templates', 'nginx-site.conf.hbs'), 'utf8');
  return [
    sha256(render(app, { hostname: host.name, port: BENCH_PORT })),
    sha256(render(site, { hostname: host.name, port: BENCH_PORT, message })),
  ];
}

/** raw-check.sh on every host at once, one plain ssh call each. */
export async function runRaw(hosts: BenchHost[], message: string): Promise<RunOutcome> {
  const script = await readFile(join(benchDir, 'raw-check.sh'), 'utf8');
  const commands = await Promise.all(
    hosts.map(async (h) =>
      sshArgs(h, words('sh', '-c', script, 'raw-check', ...(await expectedHashes(h, message)))),
    ),
  );
  const started = process.hrtime.bigint();
  const results: Finished[] = await Promise.all(
    commands.map((args) => runTimed('ssh', args, { timeoutMs: 120_000, cpu: true })),
  );
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const out = new Map<string, HostOutcome>();
  hosts.forEach((h, i) => {
    const r = results[i];
    out.set(h.name, {
      ok: r.code === 0 ? 1 : 0,
      changed: 0,
      failed: r.code === 0 ? 0 : 1,
      unreachable: r.code === 255,
      roundTrips: 1,
    });
  });
  const output = results.map((r, i) => `${hosts[i].name}: exit ${r.code} ${r.stdout}${r.stderr}`).join('\n');
  const cpuMs = results.every((r) => r.cpuMs !== undefined)
    ? results.reduce((sum, r) => sum + (r.cpuMs ?? 0), 0)
    : undefined;
  const code = results.find((r) => r.code !== 0)?.code ?? 0;
  return { tool: 'raw', ms, cpuMs, code, hosts: out, output };
}
