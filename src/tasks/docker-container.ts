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
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote, words } from '../util/shell.js';
import { defineTask } from './define.js';
import { oneOf, rule, says, shown, text } from './options.js';

/** A one-line string: docker takes it as one argument or one env-file line. */
const oneLine = (option: string) => text(option, /^[^\n\r\0]+$/, 'a non-empty one-line string');

/** A list of one-line strings (`ports`, `volumes`). */
const entries = (option: string) => {
  const item = says((got) => `${option}: ${got} is not a valid entry`);
  return z.array(z.string(item).regex(/^[^\n\r\0]+$/, item), {
    error: `${option} must be a list of strings`,
  });
};

/** Arguments after the image: any strings, even empty ones. */
const commandArgs = z.array(z.string(says((got) => `command: ${got} is not a valid entry`)), {
  error: 'command must be a list of strings',
});

const duration = (option: string) =>
  text(option, /^(\d+(\.\d+)?(ns|us|ms|s|m|h))+$/, 'a duration like 30s or 1m30s');

const healthcheck = z.strictObject({
  /** A shell command run in the container (`curl -fs http://localhost/`), or a Docker test array:
   * `['CMD', 'curl', '-fs', 'http://localhost/']`, `['CMD-SHELL', '...']`, `['NONE']`. */
  test: z.union([z.string().min(1), z.array(z.string()).min(1)], {
    error: 'healthcheck.test must be a shell command or a non-empty list',
  }),
  /** Duration between checks, `30s`, `1m30s`. */
  interval: duration('healthcheck.interval').optional(),
  timeout: duration('healthcheck.timeout').optional(),
  retries: z
    .number(says((got) => `healthcheck.retries must be a positive integer, got ${got}`))
    .int(says((got) => `healthcheck.retries must be a positive integer, got ${got}`))
    .min(
      1,
      says((got) => `healthcheck.retries must be a positive integer, got ${got}`),
    )
    .optional(),
  startPeriod: duration('healthcheck.startPeriod').optional(),
});

export type DockerHealthcheck = z.input<typeof healthcheck>;

const options = z.strictObject({
  container: text('container', /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a container name (letters, digits, _ . -)'),
  /** Image reference (`nginx:1.25`, `app:latest`, or an id). */
  image: oneLine('image').superRefine(
    rule((image: string) =>
      image.startsWith('-') || /\s/.test(image)
        ? `image ${shown(image)} is not an image reference`
        : undefined,
    ),
  ),
  /** Arguments after the image (the command, or the entrypoint's arguments). */
  command: commandArgs.optional(),
  /** Published ports as `docker run -p` takes them: `8080:80`, `127.0.0.1:5432:5432/tcp`. */
  ports: entries('ports').optional(),
  /** Values go to `docker run --env-file /dev/stdin`: line based, so a value cannot hold a line break. */
  env: z
    .record(z.string(), z.unknown())
    .superRefine(
      rule((env: Record<string, unknown>) => {
        for (const [key, value] of Object.entries(env)) {
          if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) return `env name ${shown(key)} is not valid`;
          if (typeof value !== 'string') return `env ${key} must be a string, got ${typeof value}`;
          if (/[\n\r\0]/.test(value)) {
            return {
              problem: `env ${key} holds a line break: Docker env files cannot carry it`,
              hint: 'put the value in a file on the host (copy task) and mount it with volumes',
            };
          }
        }
        return undefined;
      }),
    )
    .transform((env) => env as Record<string, string>)
    .optional(),
  /** `docker run -v` values: `/srv/data:/data:ro`, `pgdata:/var/lib/postgresql/data`. */
  volumes: entries('volumes').optional(),
  /** Restart policy: `no`, `always`, `unless-stopped`, `on-failure[:N]`. */
  restart: text(
    'restart',
    /^(no|always|unless-stopped|on-failure(:\d+)?)$/,
    'no, always, unless-stopped or on-failure[:N]',
  ).optional(),
  healthcheck: healthcheck.optional(),
  /** Network to attach to (it must exist). */
  network: oneLine('network').optional(),
  labels: z
    .record(z.string(), z.unknown())
    .superRefine(
      rule((labels: Record<string, unknown>) => {
        for (const [key, value] of Object.entries(labels)) {
          if (key === '' || /[=\s]/.test(key) || typeof value !== 'string' || /[\n\r\0]/.test(value)) {
            return `label ${shown(key)} must be a name without = or spaces and a one-line string value`;
          }
        }
        return undefined;
      }),
    )
    .transform((labels) => labels as Record<string, string>)
    .optional(),
  state: oneOf('state', ['started', 'stopped', 'absent']).default('started'),
});

export type DockerContainerOptions = z.input<typeof options>;
type Container = z.output<typeof options>;

const MARKER = 'verdandi-docker';

export const CONFIG_HASH_LABEL = 'verdandi.config-hash';
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

/** What defines a container: every option but its name and its wanted state. */
type ContainerConfig = Omit<Container, 'container' | 'state'>;

/** The fingerprint of everything that defines the container (not its name, not its wanted state). */
export function containerConfigHash(opts: ContainerConfig): string {
  const { image, command, ports, env, volumes, restart, healthcheck, network, labels } = opts;
  const config = { image, command, ports, env, volumes, restart, healthcheck, network, labels };
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

function probe({ container, image, state }: Container): string {
  return [
    inspectFragment(
      'container',
      words(
        'docker',
        'container',
        'inspect',
        '-f',
        `{{.State.Status}}|{{index .Config.Labels ${JSON.stringify(CONFIG_HASH_LABEL)}}}|{{.Image}}`,
        container,
      ),
    ),
    ...(state === 'absent'
      ? []
      : [inspectFragment('image', words('docker', 'image', 'inspect', '-f', '{{.Id}}', image))]),
  ].join('\n');
}

/** `docker run -d` or `docker create` with every option; env on stdin. */
function createStep(opts: Container, verb: 'run' | 'create'): RunStep {
  const { container, image } = opts;
  const envLines = Object.entries(opts.env ?? {}).map(([key, value]) => `${key}=${value}\n`);
  const step: RunStep = {
    kind: 'run',
    command: words(
      'docker',
      ...(verb === 'run' ? ['run', '-d'] : ['create']),
      '--name',
      container,
      '--label',
      `${CONFIG_HASH_LABEL}=${containerConfigHash(opts)}`,
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
    description: `docker ${verb} ${container} (${image})`,
  };
  if (envLines.length > 0) step.stdin = envLines.join('');
  return step;
}

function plan(opts: Container, result: ProbeResult): Plan {
  const { image, state } = opts;
  const docker = (...args: string[]): RunStep => ({
    kind: 'run',
    command: words('docker', ...args, opts.container),
  });
  const container = readInspect(result.stdout, 'container', 'No such container');
  if ('error' in container) return { steps: [], error: container.error };
  const [status, currentHash, currentImage] = container.found === undefined ? [] : container.found.split('|');

  if (state === 'absent') {
    return container.found === undefined
      ? { steps: [] }
      : { steps: [docker('rm', '-f')], reason: `container ${status}` };
  }

  const wantedImage = readInspect(result.stdout, 'image', 'No such image');
  if ('error' in wantedImage) return { steps: [], error: wantedImage.error };

  let recreate: string | undefined;
  if (container.found === undefined) recreate = 'container does not exist';
  else if (currentHash !== containerConfigHash(opts)) recreate = 'configuration changed';
  else if (wantedImage.found === undefined)
    recreate = `image ${image} is not on the host (it will be pulled)`;
  else if (wantedImage.found !== currentImage) recreate = `image ${image} changed`;

  if (recreate !== undefined) {
    const steps = container.found === undefined ? [] : [docker('rm', '-f')];
    steps.push(createStep(opts, state === 'started' ? 'run' : 'create'));
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

/**
 * `dockerContainer({ container, image, ... })`; `name` is the label (it was the container before:
 * still accepted).
 */
export const dockerContainer = defineTask({
  type: 'dockerContainer',
  options,
  subject: 'container',
  subjectWasName: true,
  label: (container) => `docker container ${container}`,
  probe,
  plan,
});

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
