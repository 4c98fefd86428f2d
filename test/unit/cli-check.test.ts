/**
 * `verdandi check <env>` through the built CLI (`npm run build` first): every error at once with
 * file:line, exit 0 or 1, `--json`, secrets checked when a password is at hand, facts roles noted.
 * The hosts' addresses are never contacted (a check needs no host).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { encryptText } from '../../src/secrets/pgp.js';
import { cliProjects, PROJECT_ROOT } from '../helpers/cli.js';

const { project, cli } = cliProjects('check');

const APP_ROLE = [
  "import { copy, defineRole, template, z } from 'verdandi';",
  '',
  'export default defineRole({',
  "  name: 'app',",
  '  vars: z.object({ app_port: z.number(), app_token: z.string().default("none") }),',
  '  tasks: (vars, host) => [',
  "    copy({ path: '/etc/app/token', content: vars.app_token, sensitive: true }),",
  '    template({',
  "      path: '/etc/app/app.conf',",
  "      src: new URL('./templates/app.conf.hbs', import.meta.url),",
  '      vars: { ...vars, host: host.name },',
  '    }),',
  '  ],',
  '});',
  '',
].join('\n');

const FACTS_ROLE = [
  "import { copy, defineRole, z } from 'verdandi';",
  '',
  'export default defineRole({',
  "  name: 'facty',",
  '  gatherFacts: true,',
  '  vars: z.object({}),',
  "  tasks: (_vars, host) => [copy({ path: '/etc/os', content: host.facts!.os.id })],",
  '});',
  '',
].join('\n');

const DECLARED_FACTS_ROLE = [
  "import { copy, defineRole, stat } from 'verdandi';",
  '',
  'export default defineRole({',
  "  name: 'declared',",
  "  facts: { conf: stat('/etc/app.conf') },",
  "  tasks: (_vars, _host, facts) => [copy({ path: '/etc/seen', content: String(facts.conf.exists) })],",
  '});',
  '',
].join('\n');

const good = (): Record<string, string> => ({
  'roles/app/index.ts': APP_ROLE,
  'roles/app/templates/app.conf.hbs': 'port = {{ app_port }}\nhost = {{ host }}\n',
  'inventories/staging.yml': [
    'hosts:',
    '  web1: { address: 127.0.0.1, port: 1 }',
    '  web2: { address: 127.0.0.1, port: 1 }',
    'groups:',
    '  web:',
    '    hosts: [web1, web2]',
    '    roles: [app]',
    '    vars: { app_port: 8000 }',
    '',
  ].join('\n'),
});

test('a good project: exit 0, a one-line summary, --json says ok', async (t) => {
  const dir = project(good());
  const res = await cli(dir, ['check', 'staging']);
  t.is(res.code, 0, res.stderr);
  t.regex(res.stdout, /checked 2 hosts, 2 roles and plays, 4 tasks in \d+ ms: ok/);
  t.is(res.stderr, '');
  const json = await cli(dir, ['check', 'staging', '--json']);
  t.is(json.code, 0);
  const report = JSON.parse(json.stdout);
  t.true(report.ok);
  t.deepEqual(report.errors, []);
  t.is(report.tasks, 4);
});

test('every error at once, each with file:line: var type, unknown role, template var, tasks() throw, playbook', async (t) => {
  const dir = project({
    ...good(),
    'roles/broken/index.ts': [
      "import { defineRole, z } from 'verdandi';",
      '',
      'export default defineRole({',
      "  name: 'broken',",
      '  vars: z.object({}),',
      '  tasks: () => {',
      "    throw new Error('not today');",
      '  },',
      '});',
      '',
    ].join('\n'),
    'roles/app/templates/app.conf.hbs': 'port = {{ app_port }}\nname = {{ app_name }}\n',
    'site.ts': [
      "import { definePlaybook } from 'verdandi';",
      '',
      "export default definePlaybook({ plays: [{ hosts: 'web', roles: ['nope'], serial: 'lots' }] });",
      '',
    ].join('\n'),
    'inventories/staging.yml': [
      'hosts:',
      '  web1: { address: 127.0.0.1, port: 1 }',
      '  web2: { address: 127.0.0.1, port: 1, app_port: eighty }',
      'groups:',
      '  web:',
      '    hosts: [web1, web2]',
      '    roles: [app, broken, ngnix]',
      '    vars: { app_port: 8000 }',
      '',
    ].join('\n'),
  });
  const res = await cli(dir, ['check', 'staging', 'site.ts', '--json']);
  t.is(res.code, 1, res.stderr);
  const report = JSON.parse(res.stdout);
  t.false(report.ok);
  const messages: string[] = report.errors.map((e: { message: string }) => e.message);
  const has = (re: RegExp) =>
    t.true(
      messages.some((m) => re.test(m)),
      `no error matching ${re}:\n${messages.join('\n')}`,
    );
  has(/inventories\/staging\.yml:7:\d+: unknown role "ngnix"/);
  has(/role app, host web2: var app_port must be a number.*inventories\/staging\.yml:3:/);
  has(
    /role app \(roles\/app\/index\.ts:8:\d+\), host web1: template .*app\.conf\.hbs: var app_name is not defined \(line 2/,
  );
  has(/role broken \(roles\/broken\/index\.ts:7:\d+\), host web1: tasks\(\) threw: not today/);
  has(/role broken \(roles\/broken\/index\.ts:7:\d+\), host web2: tasks\(\) threw: not today/);
  has(/site\.ts play 1: unknown role "nope"/);
  has(/site\.ts play 1: serial must be a positive number, got "lots"/);
  // The text form prints the same errors on stderr, and the summary.
  const text = await cli(dir, ['check', 'staging', 'site.ts']);
  t.is(text.code, 1);
  t.is(text.stderr.match(/^error: /gm)?.length, messages.length);
  t.regex(text.stdout, new RegExp(`: ${messages.length} errors\\n$`));
});

test('secrets: decrypted with a password, every secrets.x must exist; without one, it says so', async (t) => {
  const files = good();
  files['inventories/staging.yml'] = files['inventories/staging.yml'].replace(
    'vars: { app_port: 8000 }',
    'vars: { app_port: 8000, app_token: "{{ secrets.token }}", other: "{{ secrets.missing }}" }',
  );
  const dir = project(files);
  mkdirSync(join(dir, 'secrets'), { recursive: true });
  writeFileSync(
    join(dir, 'secrets', 'staging.yml.asc'),
    await encryptText('token: s3cr3t-t0ken-value\n', { passwords: ['check-pw'], keys: [] }),
  );
  const withPassword = await cli(dir, ['check', 'staging', '--json'], {
    VERDANDI_VAULT_PASSWORD: 'check-pw',
  });
  t.is(withPassword.code, 1);
  const report = JSON.parse(withPassword.stdout);
  t.true(
    report.errors.every((e: { message: string }) =>
      /secrets\.missing, which the secrets do not have/.test(e.message),
    ),
  );
  t.is(report.errors.length, 2); // web1 and web2
  t.notRegex(withPassword.stdout, /s3cr3t-t0ken-value/);

  const wrong = await cli(dir, ['check', 'staging'], { VERDANDI_VAULT_PASSWORD: 'nope' });
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /password/);

  // CI without the password: the file is still read as an encrypted vault, and the note names every
  // secrets.x that could not be verified.
  const without = await cli(dir, ['check', 'staging'], { VERDANDI_VAULT_PASSWORD: '' });
  t.is(without.code, 0, without.stderr);
  t.regex(
    without.stdout,
    /note: secrets\/staging\.yml\.asc is an OpenPGP message encrypted to a password, not decrypted: nothing opens it without asking \(--vault-password-file, secrets\/staging\.vault-password, \$VERDANDI_VAULT_PASSWORD\)\. Not verified: that it decrypts, and that it has secrets\.missing, secrets\.token /,
  );

  // A damaged file is an error even without a password.
  writeFileSync(
    join(dir, 'secrets', 'staging.yml.asc'),
    '-----BEGIN PGP MESSAGE-----\n\nbm90IGEgbWVzc2FnZQ==\n',
  );
  const damaged = await cli(dir, ['check', 'staging', '--json'], { VERDANDI_VAULT_PASSWORD: '' });
  t.is(damaged.code, 1, damaged.stdout);
  const damagedReport = JSON.parse(damaged.stdout);
  t.is(damagedReport.errors.length, 1, 'no error repeated per secrets.x reference');
  t.regex(damagedReport.errors[0].message, /secrets\/staging\.yml\.asc is not a readable OpenPGP message/);
});

test("secrets: a site's env.secrets must name a secret; without the password the names are listed", async (t) => {
  const dir = project({
    'inventories/staging.yml': [
      'hosts:',
      '  web1: { address: 127.0.0.1, port: 1 }',
      'groups:',
      '  web:',
      '    hosts: [web1]',
      '    vars:',
      '      sites:',
      '        - name: shop',
      '          repo: git@example.org:shop.git',
      '          runtime: { type: node }',
      '          env: { secrets: { DATABASE_URL: shop_database_url, API_KEY: shop_api_key } }',
      '          process: { command: "node server.js", port: 3000 }',
      '',
    ].join('\n'),
    'secrets/staging.yml.asc': await encryptText('shop_database_url: postgres://shop@db/shop\n', {
      passwords: ['check-pw'],
      keys: [],
    }),
  });
  const res = await cli(dir, ['check', 'staging'], { VERDANDI_VAULT_PASSWORD: 'check-pw' });
  t.is(res.code, 1, res.stdout);
  t.regex(
    res.stderr,
    /^error: host web1: site shop: env\.secrets\.API_KEY names the secret "shop_api_key", which the secrets of staging do not hold$/m,
  );
  t.is(res.stderr.match(/^error: /gm)?.length, 1);
  const without = await cli(dir, ['check', 'staging'], { VERDANDI_VAULT_PASSWORD: '' });
  t.is(without.code, 0, without.stderr);
  t.regex(without.stdout, /that it has secrets\.shop_api_key, secrets\.shop_database_url /);
});

test("the repository's example inventories and init's scaffold check with exit 0, with and without the password", async (t) => {
  const scaffold = mkdtempSync(join(tmpdir(), 'vd-check-init-'));
  const init = await cli(scaffold, ['init']);
  t.is(init.code, 0, init.stderr);
  const cases: Array<[string, string]> = [
    [PROJECT_ROOT, 'staging'],
    [PROJECT_ROOT, 'production'],
    [PROJECT_ROOT, 'test'],
    [PROJECT_ROOT, 'swarm'],
    [scaffold, 'staging'],
    [scaffold, 'production'],
  ];
  for (const [dir, env] of cases) {
    const without = await cli(dir, ['check', env], { VERDANDI_VAULT_PASSWORD: '' });
    t.is(without.code, 0, `${dir} ${env}: ${without.stdout}${without.stderr}`);
    t.is(without.stderr, '', `${dir} ${env}`);
    // Every line says something (a template calling Handlebars' log helper printed empty lines).
    t.notRegex(without.stdout, /(^|\n)\n/, `${dir} ${env}: ${JSON.stringify(without.stdout)}`);
    t.regex(without.stdout, /: ok\n$/);
  }
  // The examples' secrets, with their documented password: decrypted, every secrets.x found, no note.
  for (const env of ['staging', 'production']) {
    const withPassword = await cli(PROJECT_ROOT, ['check', env, '--json'], {
      VERDANDI_VAULT_PASSWORD: 'verdandi-example',
    });
    t.is(withPassword.code, 0, withPassword.stdout);
    const report = JSON.parse(withPassword.stdout);
    t.deepEqual(report.notes, [], env);
    t.true(report.tasks > 0);
  }
});

test('a role that gathers facts is evaluated without them, and the check says so', async (t) => {
  const files = good();
  files['roles/facty/index.ts'] = FACTS_ROLE;
  files['inventories/staging.yml'] = files['inventories/staging.yml'].replace(
    'roles: [app]',
    'roles: [app, facty]',
  );
  const dir = project(files);
  const res = await cli(dir, ['check', 'staging', '--limit', 'web1']);
  t.is(res.code, 0, res.stderr);
  t.regex(
    res.stdout,
    /note: role facty, host web1: gathers facts; its tasks\(\) could not be evaluated without them/,
  );
  t.regex(res.stdout, /checked 1 host,/);
});

test('a role that declares facts is evaluated without them, and the check says so', async (t) => {
  const files = good();
  files['roles/declared/index.ts'] = DECLARED_FACTS_ROLE;
  files['inventories/staging.yml'] = files['inventories/staging.yml'].replace(
    'roles: [app]',
    'roles: [app, declared]',
  );
  const dir = project(files);
  const res = await cli(dir, ['check', 'staging', '--limit', 'web1']);
  t.is(res.code, 0, res.stderr);
  t.regex(
    res.stdout,
    /note: role declared, host web1: declares facts; its tasks\(\) could not be evaluated without them/,
  );
});

test('an inventory syntax error is one error with file:line:col, exit 1', async (t) => {
  const dir = project({ 'inventories/staging.yml': 'hosts:\n  web1: { address: 10.0.0.1\n' });
  const res = await cli(dir, ['check', 'staging', '--json']);
  t.is(res.code, 1);
  const report = JSON.parse(res.stdout);
  t.is(report.errors.length, 1);
  t.regex(report.errors[0].message, /inventories\/staging\.yml:\d+:\d+/);
});
