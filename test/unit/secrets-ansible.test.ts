/**
 * Importing Ansible Vault files, made at run time by the real `ansible-vault` (Debian's ansible).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ansibleVaultToYaml, decryptAnsibleVault } from '../../src/secrets/ansible-vault.js';
import { UserError } from '../../src/util/errors.js';
import { cleanEnv, makeProject, runSecrets, writePasswordFile } from '../fixtures/secrets/helpers.js';

const PLAIN = '# from ansible\ndb_password: "s3cr3t-ansible-db"\napi_token: tok-1234567\nlist:\n  - one\n';
const ANSIBLE_PASSWORD = 'ansible vault pw';

const work = mkdtempSync(join(tmpdir(), 'verdandi-ansible-test-'));
const passwordFile = join(work, 'vault-pass');
writeFileSync(passwordFile, `${ANSIBLE_PASSWORD}\n`, { mode: 0o600 });

function ansibleVault(args: string[]): string {
  const r = spawnSync('ansible-vault', args, {
    cwd: work,
    encoding: 'utf8',
    // A home of its own: ansible writes ~/.ansible.
    env: cleanEnv({ HOME: work }),
  });
  if (r.status !== 0) throw new Error(`ansible-vault ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

/** A file encrypted by ansible-vault with `args` (the vault password options). */
function encryptedByAnsible(name: string, args: string[]): string {
  writeFileSync(join(work, `${name}.plain`), PLAIN);
  ansibleVault(['encrypt', ...args, '--output', join(work, name), join(work, `${name}.plain`)]);
  return join(work, name);
}

test.after.always(() => rmSync(work, { recursive: true, force: true }));

test('a whole file encrypted by ansible-vault decrypts to its exact text', (t) => {
  const file = encryptedByAnsible('whole.yml', ['--vault-password-file', passwordFile]);
  const vaulted = readFileSync(file, 'utf8');
  t.true(vaulted.startsWith('$ANSIBLE_VAULT;1.1;AES256\n'));
  t.is(decryptAnsibleVault(vaulted, ANSIBLE_PASSWORD, file), PLAIN);
});

test('a vault-id (1.2) file decrypts too', (t) => {
  const file = encryptedByAnsible('labelled.yml', ['--vault-id', `prod@${passwordFile}`]);
  const vaulted = readFileSync(file, 'utf8');
  t.true(vaulted.startsWith('$ANSIBLE_VAULT;1.2;AES256;prod\n'));
  t.is(decryptAnsibleVault(vaulted, ANSIBLE_PASSWORD, file), PLAIN);
});

test('a wrong password fails the HMAC check with a clear error; damage is told apart', (t) => {
  const file = encryptedByAnsible('wrong.yml', ['--vault-password-file', passwordFile]);
  const vaulted = readFileSync(file, 'utf8');
  const wrong = t.throws(() => decryptAnsibleVault(vaulted, 'not it', file), { instanceOf: UserError });
  t.regex(wrong.message, /^wrong Ansible Vault password for .*wrong\.yml/);
  const truncated = t.throws(() => decryptAnsibleVault(vaulted.slice(0, 200), ANSIBLE_PASSWORD, file), {
    instanceOf: UserError,
  });
  t.regex(truncated.message, /is not a readable Ansible Vault file/);
});

test('a YAML file with !vault values (ansible-vault encrypt_string) gives the decrypted map', (t) => {
  const inline =
    // encrypt_string does not end its output with a newline.
    `${ansibleVault(['encrypt_string', '--vault-password-file', passwordFile, '--name', 'api_key', 'inline-s3cret-v'])}\n` +
    'plain_key: plain value\n';
  t.regex(inline, /api_key: !vault \|/);
  const yaml = ansibleVaultToYaml(inline, ANSIBLE_PASSWORD, 'group_vars/all.yml');
  t.is(yaml, 'api_key: inline-s3cret-v\nplain_key: plain value\n');
});

test('verdandi secrets import-ansible-vault stores the YAML encrypted with the env password', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const file = encryptedByAnsible('import.yml', ['--vault-password-file', passwordFile]);
  writePasswordFile(project, 'staging', 'verdandi-staging-pw');

  const imported = await runSecrets(
    ['import-ansible-vault', 'staging', file, '--ansible-vault-password-file', passwordFile],
    {
      cwd: project,
    },
  );
  t.is(imported.code, 0, imported.stderr);
  t.regex(
    imported.stdout,
    /imported 3 keys from .* into secrets\/staging\.yml\.asc \(encrypted to password\)/,
  );
  const view = await runSecrets(['view', 'staging'], { cwd: project });
  t.is(view.stdout, PLAIN);

  // Ansible's own variable works too; an existing env is not replaced without --force.
  const again = await runSecrets(['import-ansible-vault', 'staging', file], {
    cwd: project,
    env: { ANSIBLE_VAULT_PASSWORD_FILE: passwordFile },
  });
  t.is(again.code, 1);
  t.regex(again.stderr, /secrets\/staging\.yml\.asc already exists/);
  const forced = await runSecrets(['import-ansible-vault', 'staging', file, '--force'], {
    cwd: project,
    env: { ANSIBLE_VAULT_PASSWORD_FILE: passwordFile },
  });
  t.is(forced.code, 0, forced.stderr);

  for (const output of [imported, again, forced]) {
    for (const secret of ['s3cr3t-ansible-db', 'tok-1234567', ANSIBLE_PASSWORD, 'verdandi-staging-pw']) {
      t.false(output.stdout.includes(secret) || output.stderr.includes(secret), `${secret} printed`);
    }
  }
});

test('import with a wrong Ansible password: exit 1, one clear line, nothing written', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const file = encryptedByAnsible('import-wrong.yml', ['--vault-password-file', passwordFile]);
  writePasswordFile(project, 'staging', 'verdandi-staging-pw');
  const wrongFile = join(work, 'wrong-pass');
  writeFileSync(wrongFile, 'nope\n', { mode: 0o600 });
  const r = await runSecrets(
    ['import-ansible-vault', 'staging', file, '--ansible-vault-password-file', wrongFile],
    {
      cwd: project,
    },
  );
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: wrong Ansible Vault password for /);
  t.false(existsSync(join(project, 'secrets', 'staging.yml.asc')));
});
