/**
 * A multi-line secret (a freshly generated PEM private key, stored with `secrets set` in the encrypted
 * secrets file) copied to a test host: the file on the host is the key, and no line of the key shows in
 * any output of the run: `--check --diff`, `--diff`, `-v`, `--json`, and failing commands that echo the
 * key (from its command text, and from the host's file), on stdout and stderr.
 */
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hyg-pem';
const hosts = useTestHosts(test, [HOST]);
const KEY_PATH = '/etc/ssl/private/site.key';

function pemKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

test.serial('no line of a PEM key from the secrets shows in any output', async (t) => {
  t.timeout(10 * 60_000);
  const key = pemKey();
  const project = mkdtempSync(join(tmpdir(), 'vd-secrets-pem-'));
  mkdirSync(join(project, 'secrets'));
  writeFileSync(join(project, 'secrets', 'staging.vault-password'), 'pem test vault password\n', {
    mode: 0o600,
  });
  const set = await runCli(['secrets', 'set', 'staging', 'tls_key'], { cwd: project, input: key });
  t.is(set.code, 0, set.stderr);

  const h = hosts.get(HOST);
  writeInventory(project, { hosts: { web: { address: h.address, user: h.user, key: h.key } } }, 'staging');
  writeFileSync(
    join(project, 'site.ts'),
    `import { copy, definePlaybook, shell } from 'verdandi';
const fail = process.env.FAIL;
export default definePlaybook({ plays: [{ hosts: 'all', tasks: (host) => [
  copy({ path: '${KEY_PATH}', content: host.secrets.tls_key, mode: '0600' }),
  // A command whose text holds the key, echoing it on stderr, then failing.
  shell({ script: "printf '%s\\\\n' '" + host.secrets.tls_key + "' >&2; exit 3", when: fail === 'text' }),
  // A command that prints the key from the host's file, then fails.
  shell({ script: 'cat ${KEY_PATH}; exit 4', when: fail === 'file' }),
] }] });
`,
  );

  const outputs: string[] = [];
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const res = await runCli([...args, '--host-key-checking=off'], { cwd: project, env });
    outputs.push(res.stdout, res.stderr);
    return res;
  };
  const check = await run(['run', 'staging', 'site.ts', '--check', '--diff', '-v']);
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /would change/);
  t.regex(check.stdout, /\+\[secret\]/, 'the diff is there, its lines redacted');

  const first = await run(['run', 'staging', 'site.ts', '--diff', '-v']);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /changed/);
  t.regex(first.stdout, /\+\[secret\]/);

  const json = await run(['run', 'staging', 'site.ts', '--json', '--diff', '-v']);
  t.is(json.code, 0, json.stderr);
  t.is(JSON.parse(json.stdout).hosts.web.changed, 0);

  for (const [fail, code] of [
    ['text', 2],
    ['file', 2],
  ] as const) {
    const human = await run(['run', 'staging', 'site.ts', '-v'], { FAIL: fail });
    t.is(human.code, code, `${human.stdout}\n${human.stderr}`);
    t.regex(`${human.stdout}${human.stderr}`, /\[secret\]/, `FAIL=${fail}: the key's output shows redacted`);
    const asJson = await run(['run', 'staging', 'site.ts', '--json'], { FAIL: fail });
    t.is(asJson.code, code);
    t.truthy(JSON.parse(asJson.stdout).hosts.web);
  }

  // The file on the host is the key (secrets set drops the one final newline stdin brings).
  const onHost = await hosts.ssh(HOST, `stat -c %a ${KEY_PATH}; sha256sum ${KEY_PATH}`);
  const stored = key.replace(/\n$/, '');
  t.is(onHost.stdout, `600\n${createHash('sha256').update(stored).digest('hex')}  ${KEY_PATH}\n`);

  const all = outputs.join('\n');
  t.true(all.length > 500);
  const lines = key
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= 8);
  t.true(lines.length > 20);
  for (const line of lines) t.false(all.includes(line), `output contains the key line ${line}`);
});
