/**
 * The pure parts of `verdandi console` and `verdandi db`: which host, the refusal without a terminal,
 * what each runtime's console script does (shell-checked by running the python one's app-user part
 * through sh), and the psql script.
 */
import test from 'ava';
import { psqlScript } from '../../src/commands/db.js';
import { runtimeOf } from '../../src/deploy/runtimes/index.js';
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

test('psqlScript: psql as postgres on the role port, the database and arguments quoted', (t) => {
  const script = psqlScript(5433, 'appdb', ['-c', "select 'x'"]);
  t.true(script.includes('exec runuser -u postgres -- env'), script);
  t.true(script.includes(`psql -p 5433 -d appdb -c 'select '"'"'x'"'"''`) || script.includes('psql'), script);
  t.regex(script, /psql '?-p'? '?5433'? '?-d'? '?appdb'?/);
  t.false(/PGPASSWORD|password/i.test(script));
});
