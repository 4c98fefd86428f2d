/**
 * dockerContainer: one container, started, stopped or absent, with exactly the configuration asked for.
 *
 * Docker cannot change most settings of an existing container, so the configuration is fingerprinted:
 * the sha256 of the canonical JSON of the options (keys sorted) is stored on the container as the label
 * `verdandi.config-hash`. The probe reads that label, the container's status and image id, and the id
 * of the wanted image on the host. The container is recreated (`docker rm -f` + `docker run`) when the
 * configuration changed or when the image was rebuilt or pulled under the same tag; otherwise it is only
 * started, stopped or unpaused.
 *
 * `env` values never appear on a command line: they go to `docker run --env-file /dev/stdin` on the
 * step's standard input. Docker's env files are line based, so a value cannot hold a newline.
 */
import { createHash } from 'node:crypto';
import type { Plan, ProbeResult, RunStep, Task, TaskOptions } from '../engine/types.js';
import { taskBase } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { taskOptionError } from './probes.js';

export interface DockerHealthcheck {
  /** A shell command run in the container (`curl -fs http://localhost/`), or a Docker test array:
   * `['CMD', 'curl', '-fs', 'http://localhost/']`, `['CMD-SHELL', '...']`, `['NONE']`. */
  test: string | string[];
  /** Duration between checks, `30s`, `1m30s`. */
  interval?: string;
  timeout?: string;
  retries?: number;
  startPeriod?: string;
}

export interface DockerContainerOptions {
  name: string;
  /** Image reference (`nginx:1.25`, `app:latest`, or an id). */
  image: string;
  /** Arguments after the image (the command, or the entrypoint's arguments). */
  command?: string[];
  /** Published ports as `docker run -p` takes them: `8080:80`, `127.0.0.1:5432:5432/tcp`. */
  ports?: string[];
  env?: Record<string, string>;
  /** `docker run -v` values: `/srv/data:/data:ro`, `pgdata:/var/lib/postgresql/data`. */
  volumes?: string[];
  /** Restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`. */
  restart?: string;
  healthcheck?: DockerHealthcheck;
  /** Network to attach to (it must exist). */
  network?: string;
  labels?: Record<string, string>;
  state?: 'started' | 'stopped' | 'absent';
}

export const CONFIG_HASH_LABEL = 'verdandi.config-hash';
const MARKER = 'verdandi-docker';

/** JSON with object keys sorted at every level and undefined values left out: equal data, equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The fingerprint of everything that defines the container (not its name, not its wanted state). */
export function containerConfigHash(opts: DockerContainerOptions): string {
  const { image, command, ports, env, volumes, restart, healthcheck, network, labels } = opts;
  const config = { image, command, ports, env, volumes, restart, healthcheck, network, labels };
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

export function dockerContainer(opts: DockerContainerOptions & TaskOptions): Task {
  const label = `docker container ${typeof opts.name === 'string' ? opts.name : ''}`;
  checkOptions(label, opts);
  const { name, image } = opts;
  const state = opts.state ?? 'started';
  const hash = containerConfigHash(opts);

  const probe = [
    inspectFragment(
      'container',
      words(
        'docker',
        'container',
        'inspect',
        '-f',
        `{{.State.Status}}|{{index .Config.Labels ${JSON.stringify(CONFIG_HASH_LABEL)}}}|{{.Image}}`,
        name,
      ),
    ),
    ...(state === 'absent'
      ? []
      : [inspectFragment('image', words('docker', 'image', 'inspect', '-f', '{{.Id}}', image))]),
  ].join('\n');

  const envLines = Object.entries(opts.env ?? {}).map(([key, value]) => `${key}=${value}\n`);
  /** `docker run -d` or `docker create` with every option; env on stdin. */
  const createStep = (verb: 'run' | 'create'): RunStep => {
    const step: RunStep = {
      kind: 'run',
      command: words(
        'docker',
        ...(verb === 'run' ? ['run', '-d'] : ['create']),
        '--name',
        name,
        '--label',
        `${CONFIG_HASH_LABEL}=${hash}`,
        ...Object.entries(opts.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
        ...(opts.restart !== undefined ? ['--restart', opts.restart] : []),
        ...(opts.ports ?? []).flatMap((p) => ['-p', p]),
        ...(opts.volumes ?? []).flatMap((v) => ['-v', v]),
        ...(opts.network !== undefined ? ['--network', opts.network] : []),
        ...healthcheckFlags(opts.healthcheck),
        ...(envLines.length > 0 ? ['--env-file', '/dev/stdin'] : []),
        image,
        ...(opts.command ?? []),
      ),
      description: `docker ${verb} ${name} (${image})`,
    };
    if (envLines.length > 0) step.stdin = envLines.join('');
    return step;
  };
  const docker = (...args: string[]): RunStep => ({ kind: 'run', command: words('docker', ...args, name) });

  function plan(result: ProbeResult): Plan {
    const container = readInspect(result.stdout, 'container', 'No such container');
    if ('error' in container) return { steps: [], error: container.error };
    const [status, currentHash, currentImage] =
      container.found === undefined ? [] : container.found.split('|');

    if (state === 'absent') {
      return container.found === undefined
        ? { steps: [] }
        : { steps: [docker('rm', '-f')], reason: `container ${status}` };
    }

    const wantedImage = readInspect(result.stdout, 'image', 'No such image');
    if ('error' in wantedImage) return { steps: [], error: wantedImage.error };

    let recreate: string | undefined;
    if (container.found === undefined) recreate = 'container does not exist';
    else if (currentHash !== hash) recreate = 'configuration changed';
    else if (wantedImage.found === undefined)
      recreate = `image ${image} is not on the host (it will be pulled)`;
    else if (wantedImage.found !== currentImage) recreate = `image ${image} changed`;

    if (recreate !== undefined) {
      const steps = container.found === undefined ? [] : [docker('rm', '-f')];
      steps.push(createStep(state === 'started' ? 'run' : 'create'));
      return { steps, reason: recreate };
    }
    if (state === 'started') {
      if (status === 'running' || status === 'restarting') return { steps: [] };
      if (status === 'paused') return { steps: [docker('unpause')], reason: 'paused' };
      return { steps: [docker('start')], reason: `${status} → running` };
    }
    if (status === 'running' || status === 'restarting' || status === 'paused') {
      return { steps: [docker('stop')], reason: `${status} → stopped` };
    }
    return { steps: [] };
  }

  return { ...taskBase('dockerContainer', label, { ...opts, name: label }), probe, plan };
}

function healthcheckFlags(healthcheck: DockerHealthcheck | undefined): string[] {
  if (healthcheck === undefined) return [];
  const { test } = healthcheck;
  if (Array.isArray(test) && test[0] === 'NONE') return ['--no-healthcheck'];
  // docker run only takes the shell form; an argv is quoted into one shell command.
  const cmd =
    typeof test === 'string'
      ? test
      : test[0] === 'CMD-SHELL'
        ? test.slice(1).join(' ')
        : words(...(test[0] === 'CMD' ? test.slice(1) : test));
  return [
    '--health-cmd',
    cmd,
    ...(healthcheck.interval !== undefined ? ['--health-interval', healthcheck.interval] : []),
    ...(healthcheck.timeout !== undefined ? ['--health-timeout', healthcheck.timeout] : []),
    ...(healthcheck.retries !== undefined ? ['--health-retries', String(healthcheck.retries)] : []),
    ...(healthcheck.startPeriod !== undefined ? ['--health-start-period', healthcheck.startPeriod] : []),
  ];
}

// ---------------------------------------------------------------------------------------------------
// Shared with docker-stack.ts and docker-image.ts

/**
 * Probe fragment running a docker inspect-like command: prints `verdandi-docker <key>-exit <code>` and
 * each output line as `verdandi-docker <key> <line>` (errors included, for the plan's message).
 */
export function inspectFragment(key: string, command: string): string {
  return [
    `out=$(${command} 2>&1); code=$?`,
    `echo "${MARKER} ${key}-exit $code"`,
    `printf '%s\\n' "$out" | sed ${quote(`s/^/${MARKER} ${key} /`)}`,
  ].join('\n');
}

/** Output lines of an inspectFragment. */
export function inspectLines(stdout: string, key: string): { exit?: string; lines: string[] } {
  let exit: string | undefined;
  const lines: string[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith(`${MARKER} ${key}-exit `)) exit = line.slice(`${MARKER} ${key}-exit `.length);
    else if (line.startsWith(`${MARKER} ${key} `)) lines.push(line.slice(`${MARKER} ${key} `.length));
  }
  return { exit, lines };
}

/**
 * The first output line of a successful inspect (`found`), undefined `found` when docker said the object
 * does not exist (`notFound` text), or an error for anything else (no docker, daemon down...).
 */
export function readInspect(
  stdout: string,
  key: string,
  notFound: string,
): { found?: string } | { error: string } {
  const { exit, lines } = inspectLines(stdout, key);
  if (exit === '0') return { found: lines.find((l) => l !== '') ?? '' };
  const text = lines.filter((l) => l.trim() !== '').join(' ');
  if (exit !== undefined && text.includes(notFound)) return {};
  return {
    error: `docker ${key} inspect failed (exit code ${exit ?? 'unknown'}): ${text || 'no output'}; is Docker installed and running? Install and start it in earlier tasks`,
  };
}

function checkOptions(label: string, opts: DockerContainerOptions): void {
  if (typeof opts.name !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(opts.name)) {
    throw taskOptionError(
      'dockerContainer',
      `name must be a container name (letters, digits, _ . -), got ${JSON.stringify(opts.name)}`,
    );
  }
  const oneLine = (what: string, value: unknown) => {
    if (typeof value !== 'string' || value === '' || /[\n\r\0]/.test(value)) {
      throw taskOptionError(
        label,
        `${what} must be a non-empty one-line string, got ${JSON.stringify(value)}`,
      );
    }
  };
  oneLine('image', opts.image);
  if (opts.image.startsWith('-') || /\s/.test(opts.image))
    throw taskOptionError(label, `image ${JSON.stringify(opts.image)} is not an image reference`);
  for (const key of ['command', 'ports', 'volumes'] as const) {
    const list = opts[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) throw taskOptionError(label, `${key} must be a list of strings`);
    for (const item of list) {
      if (typeof item !== 'string' || (key !== 'command' && (item === '' || /[\n\r\0]/.test(item)))) {
        throw taskOptionError(label, `${key}: ${JSON.stringify(item)} is not a valid entry`);
      }
    }
  }
  if (opts.restart !== undefined && !/^(no|always|unless-stopped|on-failure(:\d+)?)$/.test(opts.restart)) {
    throw taskOptionError(
      label,
      `restart must be no, always, unless-stopped or on-failure[:N], got ${JSON.stringify(opts.restart)}`,
    );
  }
  if (opts.network !== undefined) oneLine('network', opts.network);
  for (const [key, value] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key))
      throw taskOptionError(label, `env name ${JSON.stringify(key)} is not valid`);
    if (typeof value !== 'string')
      throw taskOptionError(label, `env ${key} must be a string, got ${typeof value}`);
    if (/[\n\r\0]/.test(value)) {
      throw taskOptionError(
        label,
        `env ${key} holds a line break: Docker env files cannot carry it`,
        'put the value in a file on the host (copy task) and mount it with volumes',
      );
    }
  }
  for (const [key, value] of Object.entries(opts.labels ?? {})) {
    if (key === '' || /[=\s]/.test(key) || typeof value !== 'string' || /[\n\r\0]/.test(value)) {
      throw taskOptionError(
        label,
        `label ${JSON.stringify(key)} must be a name without = or spaces and a one-line string value`,
      );
    }
  }
  const health = opts.healthcheck;
  if (health !== undefined) {
    const okTest =
      typeof health.test === 'string'
        ? health.test !== ''
        : Array.isArray(health.test) && health.test.length > 0;
    if (!okTest) throw taskOptionError(label, 'healthcheck.test must be a shell command or a non-empty list');
    for (const key of ['interval', 'timeout', 'startPeriod'] as const) {
      const value = health[key];
      if (value !== undefined && !/^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/.test(value)) {
        throw taskOptionError(
          label,
          `healthcheck.${key} must be a duration like 30s or 1m30s, got ${JSON.stringify(value)}`,
        );
      }
    }
    if (health.retries !== undefined && !(Number.isInteger(health.retries) && health.retries > 0)) {
      throw taskOptionError(
        label,
        `healthcheck.retries must be a positive integer, got ${JSON.stringify(health.retries)}`,
      );
    }
  }
  const state = opts.state;
  if (state !== undefined && !['started', 'stopped', 'absent'].includes(state)) {
    throw taskOptionError(label, `state must be started, stopped or absent, got ${JSON.stringify(state)}`);
  }
}
