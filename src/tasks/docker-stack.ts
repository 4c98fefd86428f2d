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
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep, Step } from '../engine/types.js';
import { and, quote, words } from '../util/shell.js';
import { defineTask, type PrepareContext } from './define.js';
import { inspectFragment, inspectLines } from './docker-container.js';
import { flag, presence, rule, shown, text } from './options.js';

const options = z.strictObject({
  stack: text('stack', /^[a-zA-Z0-9][a-zA-Z0-9_-]*$/, 'a stack name (letters, digits, _ -)'),
  state: presence.default('present'),
  /** The compose file's content (YAML, version 3). Checked when the stack is present. */
  compose: z.string({ error: 'compose must be the content of a compose file (a YAML string)' }).default(''),
  /** Variables for `${VAR}` in the compose file: an object, or the text of a shell env file (`KEY=value`). */
  envFile: z
    .union([z.string(), z.record(z.string(), z.unknown())], {
      error: 'envFile must be an object of NAME: value strings or the text of an env file',
    })
    .superRefine(
      rule((envFile: string | Record<string, unknown>) => {
        if (typeof envFile === 'string') return undefined;
        for (const [key, value] of Object.entries(envFile)) {
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key))
            return `envFile name ${shown(key)} is not a variable name`;
          if (typeof value !== 'string') return `envFile ${key} must be a string, got ${typeof value}`;
        }
        return undefined;
      }),
    )
    .optional(),
  /** Wait for the services to converge when Docker can (default true). */
  wait: flag('wait').default(true),
});

export type DockerStackOptions = z.input<typeof options>;

/** The stack as the probe and plan see it: the env file as the text written on the host. */
interface Stack extends Omit<z.output<typeof options>, 'envFile'> {
  envContent?: string;
  composePath: string;
  envPath: string;
}

export const STACKS_DIR = '/etc/verdandi/stacks';
const MARKER = 'verdandi-stack';

function prepare(opts: z.output<typeof options>, { fail }: PrepareContext): Stack {
  const { envFile, ...stack } = opts;
  if (opts.state === 'present') {
    const problem = composeProblem(opts.compose);
    if (problem) fail('compose', problem);
  }
  return {
    ...stack,
    envContent: envFileContent(envFile),
    composePath: `${STACKS_DIR}/${opts.stack}.yml`,
    envPath: `${STACKS_DIR}/${opts.stack}.env`,
  };
}

function probe({ stack: name, composePath, envPath }: Stack): string {
  const fileHash = (key: string, path: string) =>
    `if [ -f ${quote(path)} ]; then echo "${MARKER} ${key} $(sha256sum < ${quote(path)} | cut -d ' ' -f 1)"; else echo '${MARKER} ${key} none'; fi`;
  return [
    fileHash('compose', composePath),
    fileHash('env', envPath),
    inspectFragment('services', words('docker', 'stack', 'services', '--format', '{{.Name}}', name)),
    `if docker stack deploy --help 2>/dev/null | grep -q -e '--detach'; then echo '${MARKER} detach-flag yes'; else echo '${MARKER} detach-flag no'; fi`,
  ].join('\n');
}

function plan(opts: Stack, result: ProbeResult): Plan {
  const { stack: name, state, envContent, composePath, envPath } = opts;
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
  const wait = opts.wait && seen.get('detach-flag') === 'yes';
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

/** `dockerStack({ stack, compose, envFile, wait, state })`; `name` is the label (it was the stack before: still accepted). */
export const dockerStack = defineTask({
  type: 'dockerStack',
  options,
  subject: 'stack',
  subjectWasName: true,
  label: (stack) => `docker stack ${stack}`,
  prepare,
  probe,
  plan,
});

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** What is wrong with the compose file (YAML syntax, no services), checked when the role is built. */
function composeProblem(compose: string): string | undefined {
  if (compose.trim() === '') return 'compose must be the content of a compose file (a YAML string)';
  let parsed: unknown;
  try {
    parsed = yaml.load(compose);
  } catch (err) {
    const mark = (err as { mark?: { line: number; column: number } }).mark;
    const where = mark ? ` at line ${mark.line + 1}, column ${mark.column + 1}` : '';
    return `compose is not valid YAML${where}: ${(err as Error).message.split('\n')[0]}`;
  }
  const services = (parsed as { services?: unknown } | null)?.services;
  if (services === null || typeof services !== 'object' || Object.keys(services as object).length === 0) {
    return 'compose has no services: a stack needs a top-level `services:` map';
  }
  return undefined;
}

/** The env file's text: an object becomes `KEY='value'` lines (shell-quoted); a string is kept as is. */
function envFileContent(envFile: string | Record<string, unknown> | undefined): string | undefined {
  if (envFile === undefined) return undefined;
  if (typeof envFile === 'string') return envFile.endsWith('\n') || envFile === '' ? envFile : `${envFile}\n`;
  return Object.entries(envFile)
    .map(([key, value]) => `${key}=${quote(String(value))}\n`)
    .join('');
}
