/**
 * The pure parts of `verdandi console` and `verdandi db`: which host, the refusal without a terminal,
 * what each runtime's console script does (shell-checked by running the python one's app-user part
 * through sh), and the psql script.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { psqlScript } from '../../src/commands/db.js';
import { runtimeOf } from '../../src/deploy/runtimes/index.js';
import { pickTaskNode, type SwarmSite, taskNodesScript } from '../../src/deploy/runtimes/swarm.js';
import { type Site, siteSchema } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import { pickHost, requireTerminal } from '../../src/engine/interactive.js';
import { UserError } from '../../src/util/errors.js';

const site = (runtime: Record<string, unknown>, extra: Record<string, unknown> = {}): Site =>
  siteSchema.parse({ name: 'app', repo: '/r', runtime, process: { command: 'serve' }, ...extra });

test('pickHost: the first host by default, saying so when several run it', (t) => {
  t.deepEqual(pickHost(['web1'], 'site app', ['web1', 'db1']), { host: 'web1' });
  const two = pickHost(['web1', 'web2'], 'site app', ['web1', 'web2']);
  t.is(two.host, 'web1');
  t.regex(two.note ?? '', /2 hosts of site app \(web1, web2\): on web1 \(choose another with --host\)/);
  t.deepEqual(pickHost(['web1', 'web2'], 'site app', ['web1', 'web2'], 'web2'), { host: 'web2' });
});

test('pickHost: a host not in the inventory, or not running it, is a user error (exit 1)', (t) => {
  const unknown = t.throws(() => pickHost(['web1'], 'site app', ['web1', 'db1'], 'web9'), {
    instanceOf: UserError,
  });
  t.is(unknown.exitCode, 1);
  t.regex(unknown.message, /--host web9: no such host in the inventory/);
  const other = t.throws(() => pickHost(['web1'], 'the postgres role', ['web1', 'db1'], 'db1'), {
    instanceOf: UserError,
  });
  t.regex(other.message, /--host db1: not a host of the postgres role/);
  t.throws(() => pickHost([], 'the postgres role', ['web1']), { instanceOf: UserError });
});

test('requireTerminal: no terminal and no command is refused; a command or a terminal is enough', (t) => {
  const err = t.throws(() => requireTerminal('verdandi console', false, false), { instanceOf: UserError });
  t.is(err.exitCode, 1);
  t.regex(err.message, /verdandi console needs a terminal/);
  t.notThrows(() => requireTerminal('verdandi console', true, false));
  t.notThrows(() => requireTerminal('verdandi console', false, true));
});

test('python console: the app user in the live release, the command exec-ed, the .env not sent', (t) => {
  const s = site({ type: 'python' }, { env: { vars: { SECRET_ISH: 'value-1' } } });
  const paths = sitePaths(s, '/srv');
  const script = runtimeOf(s).consoleScript({
    site: s,
    paths,
    release: 'r1',
    command: 'python manage.py shell',
  });
  t.true(script.startsWith('exec runuser -u app -- env HOME=/srv/app sh -c'), script);
  t.true(script.includes(' sh /srv/app/releases/r1 3<<'));
  t.true(script.includes('exec python manage.py shell'));
  t.true(script.includes('. ./.env'));
  t.false(script.includes('value-1'));
  // No command: the app user's shell.
  const shell = runtimeOf(s).consoleScript({ site: s, paths, release: 'r1' });
  t.regex(shell, /getent passwd/);
});

test("node console: the release's node_modules/.bin first in PATH", (t) => {
  const s = site({ type: 'node' });
  const script = runtimeOf(s).consoleScript({
    site: s,
    paths: sitePaths(s, '/srv'),
    release: 'r1',
    command: 'node',
  });
  t.true(script.includes('PATH="$PWD/node_modules/.bin:$PATH"; export PATH; exec node'), script);
});

test("docker console: docker exec into the live color's container, -it only with a terminal", (t) => {
  const s = site({ type: 'docker' });
  const paths = sitePaths(s, '/srv');
  const script = runtimeOf(s).consoleScript({
    site: s,
    paths,
    release: 'r1',
    live: 'green',
    command: 'rails c',
  });
  t.true(script.startsWith('vd_c=app-green\n'), script);
  t.true(script.includes('if [ -t 0 ]; then vd_t=-it; else vd_t=-i; fi'));
  t.true(script.includes(`exec docker exec "$vd_t" "$vd_c" sh -c 'exec rails c'`));
  t.regex(script, /is not running \(see verdandi status\)' >&2; exit 1/);
});

test('swarm console: a local task of the web service, its environment from the secret', (t) => {
  const s = site({ type: 'swarm', compose: 'docker-compose.yml', port: 8080 });
  const script = runtimeOf(s).consoleScript({ site: s, paths: sitePaths(s, '/srv'), release: 'r1' });
  t.true(script.includes('label=com.docker.swarm.service.name=app_web'), script);
  t.true(script.includes('/run/secrets/env'));
  t.regex(script, /no task of app_web runs on this node/);
});

// --- where a swarm site's console opens: a node that runs a task ---------------------------------------

const swarmSite = () => site({ type: 'swarm', port: 8080 }) as SwarmSite;
const nodes = [
  { name: 'm', address: '10.0.0.31', vars: { docker_swarm: 'manager' } },
  { name: 'w1', address: '10.0.0.32', vars: { docker_swarm: 'worker' } },
  // Connected through one address, advertising another to the swarm.
  {
    name: 'w2',
    address: '192.168.1.33',
    vars: { docker_swarm: 'worker', docker_swarm_advertise_addr: '10.0.0.33' },
  },
];

test('swarm console host: the first node that runs a task, matched by its advertised address', (t) => {
  // w2's docker hostname is not its inventory name: its address says which host it is.
  const out = 'swarm_node=debian-7|10.0.0.33\nswarm_node=w1|10.0.0.32\n';
  t.deepEqual(pickTaskNode(swarmSite(), 'swarm_node=debian-7|10.0.0.33\n', nodes), { host: 'w2' });
  const two = pickTaskNode(swarmSite(), out, nodes);
  t.is(two.host, 'w2');
  t.regex(two.note ?? '', /2 hosts run a task of app_web \(w2, w1\): on w2 \(choose another with --host\)/);
  t.deepEqual(pickTaskNode(swarmSite(), out, nodes, 'w1'), { host: 'w1' });
  // No address known: the hostname.
  t.deepEqual(pickTaskNode(swarmSite(), 'swarm_node=w1|\n', nodes), { host: 'w1' });
});

test('swarm console host: --host of a node without a task, no task at all, not a manager: exit 1', (t) => {
  const out = 'swarm_node=w1|10.0.0.32\nswarm_node=stranger|10.9.9.9\n';
  const refused = (f: () => unknown) => {
    const err = t.throws(f, { instanceOf: UserError }) as UserError;
    t.is(err.exitCode, 1);
    return `${err.message}\n${err.hint ?? ''}`;
  };
  const noTask = refused(() => pickTaskNode(swarmSite(), out, nodes, 'm'));
  t.regex(noTask, /--host m: no task of app_web runs there/);
  t.regex(noTask, /the hosts that run one: w1; on nodes not in the inventory: stranger \(10\.9\.9\.9\)/);
  t.regex(
    refused(() => pickTaskNode(swarmSite(), out, nodes, 'w9')),
    /--host w9: no such host in the inventory/,
  );
  t.regex(
    refused(() => pickTaskNode(swarmSite(), 'swarm_node=stranger|10.9.9.9\n', nodes)),
    /no task of app_web is running on a host of the inventory; on nodes not in the inventory: stranger/,
  );
  t.regex(
    refused(() => pickTaskNode(swarmSite(), '', nodes)),
    /no task of app_web is running/,
  );
  t.regex(
    refused(() => pickTaskNode(swarmSite(), 'swarm_not_manager\n', nodes)),
    /is not a swarm manager/,
  );
});

test("swarm console host: the script lists the running tasks' nodes once each, with their address", async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'vd-console-docker-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  // A stand-in docker: a manager whose service has two running tasks on w1, one starting on w2.
  writeFileSync(
    join(bin, 'docker'),
    [
      '#!/bin/sh',
      'case "$1 $2" in',
      '  "info --format") echo true ;;',
      '  "service ps") [ "$7" = app_web ] || exit 1; printf "w1|Running 2 minutes ago\\nw2|Starting 1 second ago\\nw1|Running 1 minute ago\\n" ;;',
      '  "node inspect") [ "$5" = w1 ] && echo 10.0.0.32 ;;',
      'esac',
    ].join('\n'),
    { mode: 0o755 },
  );
  const script = taskNodesScript(swarmSite());
  const run = (path: string) =>
    new Promise<string>((resolve, reject) =>
      execFile('sh', ['-c', script], { env: { ...process.env, PATH: path } }, (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
  t.is(await run(`${bin}:${process.env.PATH}`), 'swarm_node=w1|10.0.0.32\n');
  writeFileSync(join(bin, 'docker'), '#!/bin/sh\n[ "$1" = info ] && echo false\n', { mode: 0o755 });
  t.is(await run(`${bin}:${process.env.PATH}`), 'swarm_not_manager\n');
});

test('psqlScript: psql as postgres on the role port, the database and arguments quoted', (t) => {
  const script = psqlScript(5433, 'appdb', ['-c', "select 'x'"]);
  t.true(script.includes('exec runuser -u postgres -- env'), script);
  t.true(script.includes(`psql -p 5433 -d appdb -c 'select '"'"'x'"'"''`) || script.includes('psql'), script);
  t.regex(script, /psql '?-p'? '?5433'? '?-d'? '?appdb'?/);
  t.false(/PGPASSWORD|password/i.test(script));
});
