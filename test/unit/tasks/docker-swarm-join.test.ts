/**
 * dockerSwarmJoin's read of the worker token on the manager, run by `sh` against a fake `docker` that
 * plays a manager just after `docker swarm init`: active and in control by `docker info`, while
 * `join-token` still answers "not a swarm manager" for a while.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { workerTokenRead } from '../../../src/tasks/docker-swarm-join.js';

const TOKEN = 'SWMTKN-1-abc123-def456';

/** A `docker` on PATH whose join-token fails the first `failures` times; counts calls in a file. */
function fakeDocker(
  failures: number,
  info = 'active true',
): { dir: string; run: (wait: number) => ReturnType<typeof spawnSync> } {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi-swarm-'));
  writeFileSync(
    join(dir, 'docker'),
    [
      '#!/bin/sh',
      `if [ "$1" = info ]; then echo '${info}'; exit 0; fi`,
      `n=$(cat "${dir}/calls" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "${dir}/calls"`,
      `if [ "$n" -le ${failures} ]; then echo 'Error response from daemon: This node is not a swarm manager.' >&2; exit 1; fi`,
      `echo '${TOKEN}'`,
    ].join('\n'),
  );
  chmodSync(join(dir, 'docker'), 0o755);
  const run = (wait: number) =>
    spawnSync('sh', ['-c', workerTokenRead(wait)], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
    });
  return { dir, run };
}

test('the token read retries join-token while the new manager is not yet answering', (t) => {
  const { dir, run } = fakeDocker(1);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = run(5);
  t.is(result.status, 0, String(result.stderr));
  t.is(result.stdout, `${TOKEN}\n`);
});

test('the token read gives up after waitSeconds, saying so', (t) => {
  const { dir, run } = fakeDocker(100);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = run(2);
  t.is(result.status, 1);
  t.is(result.stdout, '');
  t.regex(String(result.stderr), /no active swarm manager here after 2 s/);
});

test('the token read does not ask for the token of a node that is not an active manager', (t) => {
  const { dir, run } = fakeDocker(0, 'inactive false');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const result = run(1);
  t.is(result.status, 1);
  t.is(result.stdout, '');
  t.false(existsSync(join(dir, 'calls')), 'join-token was called');
});
