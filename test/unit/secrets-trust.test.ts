/**
 * Promises of the secrets an adversarial user checked: a file for another password is not called
 * corrupted (and a damaged one is not called a wrong password), an editor that empties the file wipes
 * nothing, short values do not mangle ordinary words and are warned about by key, and a diff of a file
 * holding secrets never shows the host's side (it may hold a rotated value nobody registered).
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { hideHostSide } from '../../src/engine/run.js';
import { encryptedDataStart, readSealed } from '../../src/secrets/pgp.js';
import { clearSecrets, holdsSecret, redact, registerSecret, shortSecretKeys } from '../../src/util/redact.js';
import {
  gnupgHomeFor,
  gpg,
  makeProject,
  runSecrets,
  script,
  writePasswordFile,
} from '../fixtures/secrets/helpers.js';

const PASSWORD = 'trust-Pw-8810';
const OTHER_PASSWORD = 'another-Pw-2207';
const TEXT = 'db_password: Tr-Secret-5512\napi_key: ak_trust_99f1\n';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A project with secrets/staging.vault-password = PASSWORD, removed after the test. */
function project(t: ExecutionContext): { dir: string; asc: string } {
  const dir = makeProject();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writePasswordFile(dir, 'staging', PASSWORD);
  return { dir, asc: join(dir, 'secrets', 'staging.yml.asc') };
}

/** A password file outside secrets/ (the env's own file holds PASSWORD), for --vault-password-file. */
function passwordFile(dir: string, password: string): string {
  const file = join(dir, `pw-${password}`);
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  return file;
}

/** secrets/staging.yml.asc written by the CLI, encrypted to `password`. */
async function encryptWithCli(t: ExecutionContext, dir: string, password: string): Promise<void> {
  const plain = join(dir, 'plain.yml');
  writeFileSync(plain, TEXT);
  const r = await runSecrets(
    [
      'encrypt',
      'staging',
      plain,
      '--remove-plain',
      '--force',
      '--vault-password-file',
      passwordFile(dir, password),
    ],
    { cwd: dir },
  );
  t.is(r.code, 0, r.stderr);
}

/** secrets/staging.yml.asc written by `gpg --symmetric --armor`, to `password`. */
function encryptWithGpg(t: ExecutionContext, dir: string, password: string): void {
  const home = gnupgHomeFor(t);
  const r = gpg(home, ['--passphrase', password, '--symmetric', '--armor', '-o', '-'], TEXT);
  t.is(r.code, 0, r.stderr);
  writeFileSync(join(dir, 'secrets', 'staging.yml.asc'), r.stdout);
}

const WRONG_PASSWORD =
  'error: wrong password for secrets/staging.yml.asc (password from secrets/staging.vault-password), ' +
  'or a file encrypted for another password or key\n';

for (const [maker, encrypt] of [
  ['the CLI', encryptWithCli],
  ['gpg --symmetric', async (t: ExecutionContext, dir: string, pw: string) => encryptWithGpg(t, dir, pw)],
] as const) {
  test(`a file made by ${maker} for another password: "wrong password", not "corrupted"`, async (t) => {
    const { dir, asc } = project(t);
    await encrypt(t, dir, OTHER_PASSWORD);
    const before = sha256(asc);
    for (const command of [
      ['view', 'staging'],
      ['set', 'staging', 'extra'],
    ]) {
      const r = await runSecrets(command, { cwd: dir, input: 'extra-Value-123' });
      t.is(r.code, 1, command.join(' '));
      t.true(r.stderr.startsWith(WRONG_PASSWORD), r.stderr);
      t.regex(r.stderr, /→ check the password and where it comes from;.*the file was not changed\n$/);
      t.notRegex(r.stderr, /corrupted|restore it from git/);
      t.is(r.stdout, '');
      t.is(sha256(asc), before);
    }
    // With its own password it opens: the file was never damaged.
    const view = await runSecrets(
      ['view', 'staging', '--vault-password-file', passwordFile(dir, OTHER_PASSWORD)],
      {
        cwd: dir,
      },
    );
    t.is(view.code, 0, view.stderr);
    t.is(view.stdout, TEXT);
  });

  test(`a file made by ${maker} with damaged data: "corrupted", not "wrong password"`, async (t) => {
    const { dir, asc } = project(t);
    await encrypt(t, dir, PASSWORD);
    // Flip one bit of the last byte of the encrypted data (the integrity check's hash), past the
    // prefix the session key is checked on; the armor checksum goes, so the damage reaches decryption.
    const armored = readFileSync(asc, 'utf8');
    const bytes = Buffer.from(
      armored
        .split('\n')
        .filter((l) => /^[A-Za-z0-9+/]+=*$/.test(l) && l.length > 4)
        .join(''),
      'base64',
    );
    bytes[bytes.length - 1] ^= 0x01;
    const lines = bytes.toString('base64').match(/.{1,64}/g) ?? [];
    writeFileSync(
      asc,
      ['-----BEGIN PGP MESSAGE-----', '', ...lines, '-----END PGP MESSAGE-----', ''].join('\n'),
    );
    const before = sha256(asc);
    const r = await runSecrets(['view', 'staging'], { cwd: dir });
    t.is(r.code, 1);
    t.is(
      r.stderr,
      'error: secrets/staging.yml.asc could not be decrypted: the password or key is right, but its data is ' +
        'corrupted or truncated (integrity check failed)\n' +
        '  → restore it from git (git checkout -- secrets/staging.yml.asc) or from a backup\n',
    );
    t.is(sha256(asc), before);
  });
}

test('a truncated file and a file with broken armor are told as unreadable, with their fix', async (t) => {
  const { dir, asc } = project(t);
  await encryptWithCli(t, dir, PASSWORD);
  const whole = readFileSync(asc, 'utf8');
  for (const broken of [
    whole.slice(0, Math.floor(whole.length / 2)),
    whole.replace(/^-----BEGIN PGP MESSAGE-----$/m, '-----BEGIN PGP MESSAG-----'),
  ]) {
    writeFileSync(asc, broken);
    const r = await runSecrets(['view', 'staging'], { cwd: dir });
    t.is(r.code, 1);
    t.is(
      r.stderr,
      'error: secrets/staging.yml.asc is not a readable OpenPGP message (corrupted or truncated)\n' +
        '  → restore it from git (git checkout -- secrets/staging.yml.asc) or from a backup\n',
    );
    t.is(readFileSync(asc, 'utf8'), broken);
  }
});

test('encryptedDataStart finds the data packet of files of the CLI and of gpg', async (t) => {
  const { dir, asc } = project(t);
  for (const encrypt of [
    () => encryptWithCli(t, dir, PASSWORD),
    async () => encryptWithGpg(t, dir, PASSWORD),
  ]) {
    await encrypt();
    const sealed = await readSealed(readFileSync(asc, 'utf8'), 'x');
    t.is(sealed.dataStart?.[0], 1, 'version 1 data (CFB + MDC)');
    t.true((sealed.dataStart?.length ?? 0) > 18);
  }
  t.is(encryptedDataStart(new Uint8Array([0x01, 0x02])), undefined);
});

test('edit: an editor that empties the file is refused (exit 1, file unchanged) unless --allow-empty', async (t) => {
  const { dir, asc } = project(t);
  await encryptWithCli(t, dir, PASSWORD);
  const before = sha256(asc);
  for (const body of [': > "$1"', `printf '# nothing left\\n' > "$1"`]) {
    const r = await runSecrets(['edit', 'staging'], {
      cwd: dir,
      env: { EDITOR: script(dir, 'empty.sh', body) },
    });
    t.is(r.code, 1);
    t.is(
      r.stderr,
      'error: the edited secrets have no key left (there were 2): secrets/staging.yml.asc was left as it was\n' +
        '  → to remove every secret, run: verdandi secrets edit staging --allow-empty\n',
    );
    t.is(r.stdout, '');
    t.is(sha256(asc), before);
  }
  const allowed = await runSecrets(['edit', 'staging', '--allow-empty'], {
    cwd: dir,
    env: { EDITOR: script(dir, 'empty.sh', ': > "$1"') },
  });
  t.is(allowed.code, 0, allowed.stderr);
  t.is(allowed.stdout, 'saved secrets/staging.yml.asc (encrypted to password)\n');
  t.not(sha256(asc), before);
  const view = await runSecrets(['view', 'staging'], { cwd: dir });
  t.is(view.stdout, '');
});

test.serial('short secrets: ordinary words stay as they are; long values are still hidden', (t) => {
  clearSecrets();
  t.teardown(clearSecrets);
  registerSecret({ pin: '1', word: 'wrong', port: 5432, token: 'hunter2-long' });
  t.is(redact('1 wrong password on port 5432: hunter2-long'), '1 wrong password on port 5432: [secret]');
  t.deepEqual(
    shortSecretKeys({ pin: '1', db: { port: 5432, user: 'app' }, list: ['ok', 'longer-one'], empty: '' }),
    ['pin', 'db.port', 'db.user', 'list[0]'],
  );
});

test('short secrets: set warns once, naming the key and never the value', async (t) => {
  const { dir } = project(t);
  const r = await runSecrets(['set', 'staging', 'pin'], { cwd: dir, input: 'q7z' });
  t.is(r.code, 0, r.stderr);
  t.is(
    r.stderr,
    'warning: secrets/staging.yml.asc: the value of pin is shorter than 6 characters, too short to be hidden ' +
      'in output (values that short would hide ordinary words): make it longer, or mark the tasks that print ' +
      'it sensitive\n',
  );
  t.false(r.stdout.includes('q7z') || r.stderr.includes('q7z'));
  // Reading the file warns again (once per run), about every short key.
  const more = await runSecrets(['set', 'staging', 'port'], { cwd: dir, input: '5432' });
  t.is(more.code, 0, more.stderr);
  t.is(more.stderr.match(/^warning: /gm)?.length, 2, more.stderr);
  t.regex(more.stderr, /the value of port is shorter/);
  t.regex(more.stderr, /the value of pin is shorter/);
});

test.serial('a diff of content holding a secret hides the host side, where a rotated value may be', (t) => {
  clearSecrets();
  t.teardown(clearSecrets);
  registerSecret('New-Token-0042');
  t.true(holdsSecret('token = New-Token-0042\n'));
  t.false(holdsSecret('token = Old-Token-0041\n'));
  const patch = ['--- /etc/app.conf (host)\t', '+++ /etc/app.conf (wanted)\t', '@@ -1,3 +1,3 @@'];
  const body = [
    ' name = shop',
    '-token = Old-Token-0041',
    '--- dashes',
    '+token = New-Token-0042',
    ' port = 8080',
  ];
  t.deepEqual(hideHostSide([...patch, ...body]), [
    ...patch,
    ' name = shop',
    '-[hidden]',
    '-[hidden]',
    '+token = New-Token-0042',
    ' port = 8080',
  ]);
});
