/**
 * Secrets in a real run: `secrets set` stores database_url, the inventory refers to it as
 * `{{ secrets.database_url }}`, a template puts it into an env file on a test host (0600, atomically),
 * and no output of any command of the run (human lines, -v, --diff, --check, --json, a failure) shows it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const hosts = useTestHosts(test, ['secret-run']);
const SECRET_URL = 'postgres://app:Very-S3cret-Pa55@db.internal/app';
const SECRET_TOKEN = 'tok_7f3a9c1e55d2';

test.serial('a secret reaches the host file and never any output', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'vd-secrets-run-'));
  mkdirSync(join(project, 'secrets'));
  writeFileSync(join(project, 'secrets', 'staging.vault-password'), 'correct horse battery staple\n', {
    mode: 0o600,
  });
  for (const [key, value] of [
    ['database_url', SECRET_URL],
    ['api_token', SECRET_TOKEN],
  ]) {
    const set = await runCli(['secrets', 'set', 'staging', key], { cwd: project, input: value });
    t.is(set.code, 0, set.stderr);
  }
  const h = hosts.get('secret-run');
  writeInventory(
    project,
    {
      hosts: { web: { address: h.address, user: h.user, key: h.key } },
      vars: { database_url: '{{ secrets.database_url }}', app_name: 'shop' },
    },
    'staging',
  );
  writeFileSync(
    join(project, 'app.env.hbs'),
    'APP={{app_name}}\nDATABASE_URL={{database_url}}\nTOKEN={{token}}\n',
  );
  writeFileSync(
    join(project, 'site.ts'),
    `import { definePlaybook, template, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: (host) => [
  template({ path: '/etc/shop.env', src: new URL('./app.env.hbs', import.meta.url), mode: '0600',
             vars: { app_name: host.vars.app_name, database_url: host.vars.database_url, token: host.secrets.api_token } }),
  shell({ script: 'echo "connecting to ' + host.vars.database_url + '" >&2; exit 3', when: process.env.FAIL === '1' }),
] }] });
`,
  );
  const outputs: string[] = [];
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const res = await runCli(args, { cwd: project, env });
    outputs.push(res.stdout, res.stderr);
    return res;
  };
  const common = ['--host-key-checking=off'];
  const check = await run(['run', 'staging', 'site.ts', '--check', '--diff', '-v', ...common]);
  t.is(check.code, 0, check.stderr);
  const first = await run(['run', 'staging', 'site.ts', '--diff', '-v', ...common]);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /changed/);
  t.regex(first.stdout, /\[secret\]/);
  const json = await run(['run', 'staging', 'site.ts', '--json', ...common]);
  t.is(json.code, 0);
  t.is(JSON.parse(json.stdout).hosts.web.changed, 0);
  const failing = await run(['run', 'staging', 'site.ts', '-v', ...common], { FAIL: '1' });
  t.is(failing.code, 2);
  t.regex(failing.stdout, /connecting to \[secret\]/);
  outputs.push((await run(['provision', 'staging', '--check', '-v', ...common])).stdout);

  const onHost = await hosts.ssh('secret-run', 'stat -c %a /etc/shop.env; cat /etc/shop.env');
  t.is(onHost.stdout, `600\nAPP=shop\nDATABASE_URL=${SECRET_URL}\nTOKEN=${SECRET_TOKEN}\n`);
  const all = outputs.join('\n');
  t.true(all.length > 200);
  for (const secret of [SECRET_URL, 'Very-S3cret-Pa55', SECRET_TOKEN, 'correct horse battery staple']) {
    t.false(all.includes(secret), `output contains ${secret}`);
  }
});
