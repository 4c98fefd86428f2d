/**
 * A rotated secret never shows in a diff: a template holding a secret is provisioned, the secret is
 * rotated with `secrets set`, then `provision --check --diff` compares the wanted file (new value) with
 * the host's (old value, no longer a registered secret). Neither value may appear in any output; the
 * host's file is untouched by the check.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { projectWithSecrets, removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'ts-rotate';
const hosts = useTestHosts(test, [HOST]);
const OLD_TOKEN = 'Old-Api-Token-71c2e9';
const NEW_TOKEN = 'New-Api-Token-0b84d3';
const VAULT_PASSWORD = 'trust rotate vault pw';

test.serial('after a secret is rotated, --diff shows neither the old nor the new value', async (t) => {
  t.timeout(10 * 60_000);
  const project = await projectWithSecrets('vd-ts-rotate-', 'staging', VAULT_PASSWORD, {
    api_token: OLD_TOKEN,
  });
  t.teardown(() => removeProject(project));
  const h = hosts.get(HOST);
  writeInventory(
    project,
    {
      hosts: { web: { address: h.address, user: h.user, key: h.key } },
      roles: ['tsapp'],
      vars: { api_token: '{{ secrets.api_token }}' },
    },
    'staging',
  );
  mkdirSync(join(project, 'roles', 'tsapp', 'templates'), { recursive: true });
  writeFileSync(
    join(project, 'roles', 'tsapp', 'templates', 'app.conf.hbs'),
    'name = shop\nport = 8080\ntoken = {{api_token}}\nworkers = 4\n',
  );
  writeFileSync(
    join(project, 'roles', 'tsapp', 'index.ts'),
    `import { defineRole, template, z } from 'verdandi';
export default defineRole({
  name: 'tsapp',
  vars: z.object({ api_token: z.string() }),
  tasks: (vars) => [
    template({ path: '/etc/tsapp.conf', mode: '0600', src: new URL('./templates/app.conf.hbs', import.meta.url), vars }),
  ],
});
`,
  );
  const common = ['--host-key-checking=off'];
  const outputs: string[] = [];
  const run = async (args: string[], input?: string) => {
    const res = await runCli(args, { cwd: project, input });
    outputs.push(res.stdout, res.stderr);
    return res;
  };

  const first = await run(['provision', 'staging', ...common]);
  t.is(first.code, 0, first.stderr);
  const oldFile = `name = shop\nport = 8080\ntoken = ${OLD_TOKEN}\nworkers = 4\n`;
  const hostFile = async () =>
    (await hosts.ssh(HOST, 'stat -c %a /etc/tsapp.conf; sha256sum /etc/tsapp.conf | cut -d" " -f1')).stdout;
  const oldState = `600\n${createHash('sha256').update(oldFile).digest('hex')}\n`;
  t.is(await hostFile(), oldState);

  const rotate = await run(['secrets', 'set', 'staging', 'api_token'], NEW_TOKEN);
  t.is(rotate.code, 0, rotate.stderr);

  for (const extra of [[], ['-v']]) {
    const check = await run(['provision', 'staging', '--check', '--diff', ...extra, ...common]);
    t.is(check.code, 0, check.stderr);
    t.regex(check.stdout, /would change/);
    // The wanted side, redacted as ever; the host's changed line hidden whole (the block is indented).
    t.regex(check.stdout, /--- \/etc\/tsapp\.conf \(host; its lines hidden: the file holds secrets\)/);
    t.regex(check.stdout, /^ {4}-\[hidden\]$/m);
    t.regex(check.stdout, /^ {4}\+token = \[secret\]$/m);
    t.regex(check.stdout, /^ {4} port = 8080$/m);
  }
  t.is(await hostFile(), oldState, 'a check changes nothing on the host');

  const all = outputs.join('\n');
  for (const value of [OLD_TOKEN, NEW_TOKEN, VAULT_PASSWORD]) {
    t.false(all.includes(value), `output shows ${value}`);
  }
});
