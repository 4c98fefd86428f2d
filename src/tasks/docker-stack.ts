/**
 * dockerStack: a Swarm stack deployed from a compose file (`docker stack deploy`). Run it on a manager.
 *
 * The compose content is kept on the host as `/etc/verdandi/stacks/<name>.yml` (root only: it may hold
 * secrets), and `envFile`, when given, as `<name>.env` beside it: its variables are exported while
 * `docker stack deploy` runs, for the `${VAR}` substitutions of the compose file. The probe compares the
 * sha256 of both files with the wanted content and checks that the stack has services; the stack is
 * (re)deployed when one differs. `--prune` removes services no longer in the file.
 *
 * On Docker 26 and later, `--detach=false` makes the deploy wait until the services converged (and so a
 * rolling update finished); older versions (Debian 12 ships 20.10) have no such flag and return at once:
 * the probe asks `docker stack deploy --help` which one the host has. With `wait: false` it never waits.
 */
import { createHash } from 'node:crypto';
import yaml from 'js-yaml';
import type { Plan, ProbeResult, RunStep, Step, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { and, quote, words } from '../util/shell.js';
import { inspectFragment, inspectLines } from './docker-container.js';
import { taskOptionError } from './probes.js';

export interface DockerStackOptions {
  name: string;
  /** The compose file's content (YAML, version 3). */
  compose: string;
  /** Variables for `${VAR}` in the compose file: an object, or the text of a shell env file (`KEY=value`). */
  envFile?: string | Record<string, string>;
  /** Wait for the services to converge when Docker can (default true). */
  wait?: boolean;
  state?: 'present' | 'absent';
}

export const STACKS_DIR = '/etc/verdandi/stacks';
const MARKER = 'verdandi-stack';

export function dockerStack(opts: DockerStackOptions & TaskOptions): Task {
  const { name } = opts;
  if (typeof name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_-]*$/.test(name)) {
    throw taskOptionError(
      'dockerStack',
      `name must be a stack name (letters, digits, _ -), got ${JSON.stringify(name)}`,
    );
  }
  const label = `docker stack ${name}`;
  const state = opts.state ?? 'present';
  if (state !== 'present' && state !== 'absent') {
    throw taskOptionError(label, `state must be present or absent, got ${JSON.stringify(state)}`);
  }
  if (state === 'present') checkCompose(label, opts.compose);
  const envContent = envFileContent(label, opts.envFile);
  const composePath = `${STACKS_DIR}/${name}.yml`;
  const envPath = `${STACKS_DIR}/${name}.env`;

  const fileHash = (key: string, path: string) =>
    `if [ -f ${quote(path)} ]; then echo "${MARKER} ${key} $(sha256sum < ${quote(path)} | cut -d ' ' -f 1)"; else echo '${MARKER} ${key} none'; fi`;
  const probe = [
    fileHash('compose', composePath),
    fileHash('env', envPath),
    inspectFragment('services', words('docker', 'stack', 'services', '--format', '{{.Name}}', name)),
    `if docker stack deploy --help 2>/dev/null | grep -q -e '--detach'; then echo '${MARKER} detach-flag yes'; else echo '${MARKER} detach-flag no'; fi`,
  ].join('\n');

  function plan(result: ProbeResult): Plan {
    const seen = new Map<string, string>();
    for (const line of result.stdout.split('\n')) {
      const match = line.match(/^verdandi-stack (\S+) (\S+)$/);
      if (match) seen.set(match[1], match[2]);
    }
    const services = inspectLines(result.stdout, 'services');
    if (services.exit !== '0') {
      const text = services.lines.filter((l) => l.trim() !== '').join(' ');
      return {
        steps: [],
        error: `docker stack services ${name} failed (exit code ${services.exit ?? 'unknown'}): ${text || 'no output'}; a stack needs a swarm manager (docker swarm init, or the docker role's docker_swarm: manager)`,
      };
    }
    // "Nothing found in stack" comes on stderr; service names are <stack>_<service>.
    const deployed = services.lines.some((l) => l.startsWith(`${name}_`));
    const composeOnHost = seen.get('compose') ?? 'none';
    const envOnHost = seen.get('env') ?? 'none';

    if (state === 'absent') {
      const steps: RunStep[] = [];
      if (deployed) steps.push({ kind: 'run', command: words('docker', 'stack', 'rm', name) });
      if (composeOnHost !== 'none' || envOnHost !== 'none')
        steps.push({ kind: 'run', command: words('rm', '-f', composePath, envPath) });
      return steps.length > 0
        ? { steps, reason: deployed ? 'stack is deployed' : 'stack files remain' }
        : { steps: [] };
    }

    const reasons: string[] = [];
    if (!deployed) reasons.push('stack has no services');
    if (composeOnHost !== sha256(opts.compose))
      reasons.push(composeOnHost === 'none' ? 'compose file missing' : 'compose file differs');
    const envWanted = envContent === undefined ? 'none' : sha256(envContent);
    if (envOnHost !== envWanted)
      reasons.push(envContent === undefined ? 'env file no longer wanted' : 'env file differs');
    if (reasons.length === 0) return { steps: [] };

    const steps: Step[] = [
      { kind: 'run', command: words('mkdir', '-p', '-m', '0700', STACKS_DIR) },
      { kind: 'write', path: composePath, content: opts.compose, mode: '0600', owner: 'root', group: 'root' },
      envContent === undefined
        ? { kind: 'run', command: words('rm', '-f', envPath) }
        : { kind: 'write', path: envPath, content: envContent, mode: '0600', owner: 'root', group: 'root' },
    ];
    const wait = (opts.wait ?? true) && seen.get('detach-flag') === 'yes';
    const deploy = words(
      'docker',
      'stack',
      'deploy',
      '--with-registry-auth=false',
      '--prune',
      wait && '--detach=false',
      '-c',
      composePath,
      name,
    );
    // `set -a` exports every variable the env file assigns, for docker's ${VAR} substitution.
    steps.push({
      kind: 'run',
      command: envContent === undefined ? deploy : and(`set -a && . ${quote(envPath)} && set +a`, deploy),
      description: `docker stack deploy ${name}`,
    });
    return { steps, reason: reasons.join(', '), diff: { path: composePath, after: opts.compose } };
  }

  return { ...taskBase('dockerStack', label, { ...opts, name: label }), probe, plan };
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** A YAML syntax error or a file without services fails when the role is built, not on the host. */
function checkCompose(label: string, compose: unknown): void {
  if (typeof compose !== 'string' || compose.trim() === '') {
    throw taskOptionError(label, 'compose must be the content of a compose file (a YAML string)');
  }
  let parsed: unknown;
  try {
    parsed = yaml.load(compose);
  } catch (err) {
    const mark = (err as { mark?: { line: number; column: number } }).mark;
    const where = mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : '';
    throw taskOptionError(
      label,
      `compose is not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`,
    );
  }
  const services = (parsed as { services?: unknown } | null)?.services;
  if (services === null || typeof services !== 'object' || Object.keys(services as object).length === 0) {
    throw taskOptionError(label, 'compose has no services: a stack needs a top-level `services:` map');
  }
}

/** The env file's text: an object becomes `KEY='value'` lines (shell-quoted); a string is kept as is. */
function envFileContent(label: string, envFile: DockerStackOptions['envFile']): string | undefined {
  if (envFile === undefined) return undefined;
  if (typeof envFile === 'string') return envFile.endsWith('\n') || envFile === '' ? envFile : `${envFile}\n`;
  if (typeof envFile !== 'object' || envFile === null || Array.isArray(envFile)) {
    throw taskOptionError(
      label,
      'envFile must be an object of NAME: value strings or the text of an env file',
    );
  }
  return Object.entries(envFile)
    .map(([key, value]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
        throw taskOptionError(label, `envFile name ${JSON.stringify(key)} is not a variable name`);
      if (typeof value !== 'string')
        throw taskOptionError(label, `envFile ${key} must be a string, got ${typeof value}`);
      return `${key}=${quote(value)}\n`;
    })
    .join('');
}
