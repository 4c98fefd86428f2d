/**
 * dockerSwarmJoin: this host is a node of the swarm whose manager listens at `manager` (joined when it
 * is in no swarm: a fresh node, or one that left).
 *
 * The join token is a secret, and `docker swarm join` only takes it as an argument (`--token`), where
 * every user of the host would see it in `ps` while the join lasts. So the join does not use that
 * command: it posts the same request to the Docker engine's API on its local socket (`POST /swarm/join`,
 * what `docker swarm join` sends), with curl reading the JSON body from its standard input. The token
 * reaches the host on the step's stdin and goes to curl through the shell's builtin `printf`: it is on
 * no command line at any moment.
 *
 * The token comes either from the inventory (`token`, usually `{{ secrets.x }}`), or from the manager
 * itself during the run (`tokenFrom`: the engine reads it over the manager's connection when the join
 * is about to run, see PeerRead). The read waits, bounded, until the manager's swarm exists: manager and
 * workers are provisioned in parallel, and a worker may reach its join before the manager its init.
 */
import { z } from 'zod';
import type { Plan, ProbeResult, RunStep } from '../engine/types.js';
import { quote } from '../util/shell.js';
import { defineTask } from './define.js';
import { integer, text } from './options.js';

const address = (option: string) =>
  text(option, /^[A-Za-z0-9.:[\]_-]+$/, 'a host name or IP address, with an optional :port');

const options = z
  .strictObject({
    /** Address (and port, default 2377) of a manager of the swarm: `10.0.0.10`, `10.0.0.10:2377`. */
    manager: address('manager'),
    /** This node's address for the swarm's traffic (`--advertise-addr`). */
    advertiseAddr: address('advertiseAddr'),
    /** The join token, when the inventory holds it. */
    token: z
      .string()
      .regex(/^SWMTKN-[A-Za-z0-9-]+$/, 'a swarm join token (SWMTKN-1-…)')
      .optional(),
    /** Inventory name of the manager to read the worker join token from during the run. */
    tokenFrom: text('tokenFrom', /^[A-Za-z0-9_.-]+$/, 'an inventory host name').optional(),
    /** How long the read waits for the manager's swarm to exist, in seconds. */
    waitSeconds: integer('waitSeconds', 1).default(600),
  })
  .refine((o) => (o.token === undefined) !== (o.tokenFrom === undefined), {
    error: 'give the join token (token) or the manager to read it from (tokenFrom), not both',
  });

export type DockerSwarmJoinOptions = z.input<typeof options>;
type Join = z.output<typeof options>;

const MARKER = 'verdandi-swarm-state';
export const SWARM_API_SOCKET = '/var/run/docker.sock';

function probe(): string {
  return `echo "${MARKER} $(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown)"`;
}

/**
 * Read on the manager: the worker token once the swarm is active there, waiting for it at most
 * `waitSeconds` (one try a second). Read only: `join-token` without `--rotate` changes nothing.
 *
 * The token command itself is retried, not only the state check: right after `docker swarm init`, a
 * manager can report itself active and in control a moment before its control API answers, and
 * `join-token` then fails with "This node is not a swarm manager". The token goes from the command's
 * output to a shell variable and out through the builtin printf: it is on no command line.
 */
export function workerTokenRead(waitSeconds: number): string {
  return [
    'i=0',
    'while :; do',
    `  if [ "$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null)" = 'active true' ] &&`,
    `    token=$(docker swarm join-token -q worker 2>/dev/null) && [ -n "$token" ]; then`,
    `    printf '%s\\n' "$token"`,
    '    exit 0',
    '  fi',
    '  i=$((i + 1))',
    `  if [ "$i" -ge ${waitSeconds} ]; then echo "no active swarm manager here after ${waitSeconds} s" >&2; exit 1; fi`,
    '  sleep 1',
    'done',
  ].join('\n');
}

/** The join, through the engine's API: the token comes on stdin (first line), never as an argument. */
export function joinScript(manager: string, advertiseAddr: string): string {
  const remote = manager.includes(':') && !manager.endsWith(']') ? manager : `${manager}:2377`;
  return [
    'IFS= read -r token',
    // Tokens are letters, digits and dashes: anything else would break the JSON below.
    `case "$token" in SWMTKN-*) ;; *) echo 'the swarm join token is not a token (SWMTKN-…)' >&2; exit 1 ;; esac`,
    `case "$token" in *[!A-Za-z0-9-]*) echo 'the swarm join token has unexpected characters' >&2; exit 1 ;; esac`,
    // printf is a builtin of sh: the token is in no process's argv.
    `printf '{"JoinToken":"%s","RemoteAddrs":[%s],"AdvertiseAddr":%s,"ListenAddr":"0.0.0.0:2377"}' "$token" ${quote(JSON.stringify(remote))} ${quote(JSON.stringify(advertiseAddr))} |`,
    // The engine's answer (its error message on failure) goes to stderr, which a failure shows.
    `  curl --silent --show-error --fail-with-body --output /dev/stderr --unix-socket ${SWARM_API_SOCKET} -H 'Content-Type: application/json' --data-binary @- http://localhost/swarm/join`,
  ].join('\n');
}

function plan(join: Join, result: ProbeResult): Plan {
  const line = result.stdout.split('\n').find((l) => l.startsWith(`${MARKER} `));
  const state = line?.slice(MARKER.length + 1).trim();
  if (state === undefined)
    return { steps: [], error: `the swarm probe printed nothing (exit code ${result.exitCode})` };
  if (state === 'active') return { steps: [] };
  if (state === 'unknown' || state === '')
    return { steps: [], error: 'docker info failed: is docker installed and running on this host?' };
  if (state === 'pending' || state === 'locked' || state === 'error') {
    return {
      steps: [],
      error: `this node's swarm state is "${state}": look at \`docker info\` on it; \`docker swarm leave --force\` lets the next run join it again`,
    };
  }
  const step: RunStep = {
    kind: 'run',
    command: joinScript(join.manager, join.advertiseAddr),
    description: `join the swarm of ${join.manager}`,
  };
  if (join.token !== undefined) step.stdin = `${join.token}\n`;
  else if (join.tokenFrom !== undefined) {
    step.stdinFrom = {
      host: join.tokenFrom,
      command: workerTokenRead(join.waitSeconds),
      what: 'the swarm worker join token',
    };
  }
  return { steps: [step], reason: `not in a swarm (state: ${state})` };
}

export const dockerSwarmJoin = defineTask({
  type: 'dockerSwarmJoin',
  options,
  subject: 'manager',
  label: (manager) => `docker swarm join ${manager}`,
  probe,
  plan,
  // The step carries the token on stdin: its output and failure text are never shown.
  sensitive: () => true,
});
