/**
 * `verdandi secrets ...` driven as a user would: a child process (see fixtures/secrets/cli.ts), $EDITOR
 * scripts, stdin, signals. Every command that is not meant to print secrets is checked not to.
 */
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as openpgp from 'openpgp';
import {
  collect,
  git,
  gnupgHomeFor,
  gpg,
  makeProject,
  type Result,
  type RunOptions,
  runSecrets,
  script,
  startSecrets,
  writePasswordFile,
} from '../fixtures/secrets/helpers.js';

const PASSWORD = 'staging-Pw-0451';
const DB_URL = 'postgres://app:Db-Secret-7731@db.internal/app';
const API_KEY = 'ak_live_8c1f0e5d';
const SECRET_TEXT = `# staging secrets\ndatabase_url: "${DB_URL}"\napi_key: ${API_KEY}\n`;
/** Nothing but view/get/decrypt may print these. */
const SECRET_VALUES = [
  PASSWORD,
  DB_URL,
  'Db-Secret-7731',
  API_KEY,
  'Bad-Yaml-Secret-3',
  'from-stdin-Secret-5',
  'key-passphrase-9',
];

function assertQuiet(t: ExecutionContext, result: Result): void {
  for (const value of SECRET_VALUES) {
    t.false(result.stdout.includes(value), `stdout shows a secret: ${value}`);
    t.false(result.stderr.includes(value), `stderr shows a secret: ${value}`);
  }
}

/** Runs a command that must not print any secret, and checks it does not. */
async function quiet(t: ExecutionContext, args: string[], options: RunOptions): Promise<Result> {
  const result = await runSecrets(args, options);
  assertQuiet(t, result);
  return result;
}

/** A project whose staging secrets are SECRET_TEXT, encrypted to PASSWORD (in secrets/staging.vault-password). */
async function stagingProject(
  t: ExecutionContext,
): Promise<{ project: string; asc: string; before: Buffer }> {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  writePasswordFile(project, 'staging', PASSWORD);
  const plain = join(project, 'plain.yml');
  writeFileSync(plain, SECRET_TEXT);
  const r = await quiet(t, ['encrypt', 'staging', plain, '--remove-plain'], { cwd: project });
  t.is(r.code, 0, r.stderr);
  const asc = join(project, 'secrets', 'staging.yml.asc');
  return { project, asc, before: readFileSync(asc) };
}

function editorEnv(editor: string): Record<string, string> {
  return { EDITOR: editor };
}

/** Waits until `file` exists (the editor script writes it when it runs). */
async function waitForFile(file: string, timeoutMs = 60_000): Promise<void> {
  const start = Date.now();
  while (!existsSync(file) || readFileSync(file, 'utf8').split('\n').length < 4) {
    if (Date.now() - start > timeoutMs) throw new Error(`${file} did not appear`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('create in the editor, view, get, and gpg reads the same file with the password file', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const passwordFile = writePasswordFile(project, 'staging', PASSWORD);
  const editor = script(project, 'editor.sh', `printf '%s\\n' 'database_url: "${DB_URL}"' >> "$1"`);
  const created = await quiet(t, ['create', 'staging'], { cwd: project, env: editorEnv(editor) });
  t.is(created.code, 0, created.stderr);
  t.is(created.stdout, 'created secrets/staging.yml.asc (encrypted to password)\n');

  const asc = join(project, 'secrets', 'staging.yml.asc');
  t.true(readFileSync(asc, 'utf8').startsWith('-----BEGIN PGP MESSAGE-----'));
  t.false(readFileSync(asc, 'utf8').includes(DB_URL));

  const view = await runSecrets(['view', 'staging'], { cwd: project });
  t.regex(view.stdout, /^# Secrets of staging/);
  t.true(view.stdout.endsWith(`database_url: "${DB_URL}"\n`));
  const get = await runSecrets(['get', 'staging', 'database_url'], { cwd: project });
  t.is(get.stdout, `${DB_URL}\n`);

  const home = gnupgHomeFor(t);
  const decrypted = gpg(home, ['--passphrase-file', passwordFile, '--decrypt', asc]);
  t.is(decrypted.code, 0, decrypted.stderr);
  t.is(decrypted.stdout, view.stdout);

  const again = await quiet(t, ['create', 'staging'], { cwd: project, env: editorEnv(editor) });
  t.is(again.code, 1);
  t.regex(again.stderr, /secrets\/staging\.yml\.asc already exists/);
});

test('edit: an editor that changes nothing leaves the file byte for byte', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  // Rewrites the same text through a new file, as editors that save by rename do.
  const editor = script(project, 'same.sh', 'cp "$1" "$1.new" && mv "$1.new" "$1"');
  for (const e of ['true', editor]) {
    const r = await quiet(t, ['edit', 'staging'], { cwd: project, env: editorEnv(e) });
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, 'no change: secrets/staging.yml.asc left as it was\n');
    t.deepEqual(readFileSync(asc), before);
  }
});

test('edit: a change is encrypted again; the temporary file is 0600 in a 0700 dir, in RAM, and removed', async (t) => {
  const { project, asc } = await stagingProject(t);
  const marker = join(project, 'marker');
  const editor = script(
    project,
    'edit.sh',
    `{ echo "$1"; stat -c %a "$1"; stat -c %a "$(dirname "$1")"; } > ${marker}; echo 'extra: added-value' >> "$1"`,
  );
  const r = await quiet(t, ['edit', 'staging'], { cwd: project, env: editorEnv(editor) });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'saved secrets/staging.yml.asc (encrypted to password)\n');
  const [tempFile, fileMode, dirMode] = readFileSync(marker, 'utf8').split('\n');
  t.is(fileMode, '600');
  t.is(dirMode, '700');
  if (existsSync('/dev/shm')) t.true(tempFile.startsWith('/dev/shm/'), tempFile);
  t.false(existsSync(tempFile));
  t.false(existsSync(dirname(tempFile)));
  const view = await runSecrets(['view', 'staging'], { cwd: project });
  t.is(view.stdout, `${SECRET_TEXT}extra: added-value\n`);
  t.deepEqual(
    readdirSync(join(project, 'secrets')).filter((name) => name.startsWith('.tmp')),
    [],
    'no temporary file left in secrets/',
  );
  t.true(readFileSync(asc, 'utf8').startsWith('-----BEGIN PGP MESSAGE-----'));
});

test('edit: invalid YAML says where, without quoting it, and leaves the file as it was', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  const editor = script(project, 'bad.sh', `printf '%s\\n' 'broken: "Bad-Yaml-Secret-3' >> "$1"`);
  const r = await quiet(t, ['edit', 'staging'], { cwd: project, env: editorEnv(editor) });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^error: invalid YAML at line \d+, column \d+: .*; secrets\/staging\.yml\.asc was left as it was\n/,
  );
  t.deepEqual(readFileSync(asc), before);
});

test('edit: an editor that exits 1 changes nothing', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  const editor = script(project, 'fail.sh', 'echo "extra: x" >> "$1"; exit 1');
  const r = await quiet(t, ['edit', 'staging'], { cwd: project, env: editorEnv(editor) });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^error: the editor \(.*fail\.sh\) exited with code 1: nothing was changed in secrets\/staging\.yml\.asc\n/,
  );
  t.deepEqual(readFileSync(asc), before);
});

test('edit: Ctrl-C while the editor runs: exit 1, temporary file gone, file unchanged', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  const marker = join(project, 'marker');
  const editor = script(project, 'slow.sh', `{ echo "$1"; echo $$; echo started; } > ${marker}; sleep 30`);
  const child = startSecrets(['edit', 'staging'], { cwd: project, env: editorEnv(editor) });
  const done = collect(child);
  await waitForFile(marker);
  // A terminal's Ctrl-C goes to the whole foreground process group: Verdandi and the editor.
  process.kill(-(child.pid as number), 'SIGINT');
  const r = await done;
  assertQuiet(t, r);
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: interrupted \(Ctrl-C\): nothing was changed\n/);
  const tempFile = readFileSync(marker, 'utf8').split('\n')[0];
  t.false(existsSync(dirname(tempFile)));
  t.deepEqual(readFileSync(asc), before);
});

test('edit: SIGTERM to Verdandi alone still wipes the temporary file', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  const marker = join(project, 'marker');
  const editor = script(
    project,
    'slow.sh',
    `{ echo "$1"; echo $$; echo started; } > ${marker}; exec sleep 30`,
  );
  const child = startSecrets(['edit', 'staging'], { cwd: project, env: editorEnv(editor) });
  const done = collect(child);
  await waitForFile(marker);
  const [tempFile, editorPid] = readFileSync(marker, 'utf8').split('\n');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  process.kill(child.pid as number, 'SIGTERM');
  await exited;
  // The editor we started outlives Verdandi (it got no signal) and holds its output pipes: end it.
  process.kill(Number(editorPid), 'SIGTERM');
  const r = await done;
  t.is(r.code, 1);
  t.regex(r.stderr, /interrupted \(SIGTERM\): nothing was changed/);
  t.false(existsSync(tempFile));
  t.deepEqual(readFileSync(asc), before);
});

test('a wrong password: exit 1, one clear line, the file byte for byte as before', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  rmSync(join(project, 'secrets', 'staging.vault-password'));
  for (const command of [
    ['view', 'staging'],
    ['edit', 'staging'],
    ['get', 'staging', 'api_key'],
    ['set', 'staging', 'x'],
  ]) {
    const r = await quiet(t, command, {
      cwd: project,
      env: { ...editorEnv('true'), VERDANDI_VAULT_PASSWORD: 'not-the-password' },
      input: 'from-stdin-Secret-5\n',
    });
    t.is(r.code, 1, command.join(' '));
    t.is(
      r.stderr,
      'error: wrong password for secrets/staging.yml.asc (password from $VERDANDI_VAULT_PASSWORD), ' +
        'or a file encrypted for another password or key\n' +
        '  → check the password and where it comes from; a file encrypted elsewhere (another project, ' +
        'gpg --symmetric) opens only with the password it was made with; the file was not changed\n',
    );
    t.deepEqual(readFileSync(asc), before);
  }
});

test('a truncated file: exit 1, one clear line, the file left as it is', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  const truncated = before.subarray(0, before.length / 2);
  writeFileSync(asc, truncated);
  for (const command of [
    ['view', 'staging'],
    ['edit', 'staging'],
  ]) {
    const r = await quiet(t, command, { cwd: project, env: editorEnv('true') });
    t.is(r.code, 1);
    t.is(
      r.stderr,
      'error: secrets/staging.yml.asc is not a readable OpenPGP message (corrupted or truncated)\n' +
        '  → restore it from git (git checkout -- secrets/staging.yml.asc) or from a backup\n',
    );
    t.deepEqual(readFileSync(asc), truncated);
  }
});

test('no password anywhere and no terminal: says how to provide one', async (t) => {
  const { project } = await stagingProject(t);
  rmSync(join(project, 'secrets', 'staging.vault-password'));
  const r = await quiet(t, ['view', 'staging'], { cwd: project });
  t.is(r.code, 1);
  t.regex(
    r.stderr,
    /^error: no vault password for staging\n {2}→ put it on the first line of secrets\/staging\.vault-password/,
  );
});

test('password sources: --vault-password-file, then the env file, then $VERDANDI_VAULT_PASSWORD', async (t) => {
  const { project } = await stagingProject(t);
  const wrongFile = join(project, 'wrong-pw');
  writeFileSync(wrongFile, 'Incorrect-Pw-11\n', { mode: 0o600 });
  const flagFirst = await quiet(t, ['view', 'staging', '--vault-password-file', wrongFile], { cwd: project });
  t.regex(flagFirst.stderr, /password from .*wrong-pw\)/);
  const envVar = { VERDANDI_VAULT_PASSWORD: 'also-wrong' };
  const fileBeforeEnv = await runSecrets(['view', 'staging'], { cwd: project, env: envVar });
  t.is(fileBeforeEnv.code, 0);
  t.is(fileBeforeEnv.stdout, SECRET_TEXT);
  rmSync(join(project, 'secrets', 'staging.vault-password'));
  const envLast = await runSecrets(['view', 'staging'], {
    cwd: project,
    env: { VERDANDI_VAULT_PASSWORD: PASSWORD },
  });
  t.is(envLast.stdout, SECRET_TEXT);
});

test('a password file readable by others, or tracked by git, is refused with the fix', async (t) => {
  const { project, asc, before } = await stagingProject(t);
  const file = join(project, 'secrets', 'staging.vault-password');
  chmodSync(file, 0o640);
  const readable = await quiet(t, ['view', 'staging'], { cwd: project });
  t.is(readable.code, 1);
  t.is(
    readable.stderr,
    'error: password file secrets/staging.vault-password is readable by group or others (mode 640)\n' +
      '  → make it private: chmod 600 secrets/staging.vault-password\n',
  );
  chmodSync(file, 0o600);
  t.is(git(project, ['add', '-f', 'secrets/staging.vault-password']).code, 0);
  const tracked = await quiet(t, ['view', 'staging'], { cwd: project });
  t.is(tracked.code, 1);
  t.regex(tracked.stderr, /^error: password file secrets\/staging\.vault-password is tracked by git/);
  t.regex(tracked.stderr, /git rm --cached secrets\/staging\.vault-password/);
  t.deepEqual(readFileSync(asc), before);
});

test('set from stdin keeps comments, get reads it back, setting the same value changes no byte', async (t) => {
  const { project, asc } = await stagingProject(t);
  const set = await quiet(t, ['set', 'staging', 'token'], { cwd: project, input: 'from-stdin-Secret-5\n' });
  t.is(set.code, 0, set.stderr);
  t.is(set.stdout, 'set token in secrets/staging.yml.asc (encrypted to password)\n');
  const get = await runSecrets(['get', 'staging', 'token'], { cwd: project });
  t.is(get.stdout, 'from-stdin-Secret-5\n');
  const view = await runSecrets(['view', 'staging'], { cwd: project });
  t.is(view.stdout, `${SECRET_TEXT}token: from-stdin-Secret-5\n`);

  const bytes = readFileSync(asc);
  const same = await quiet(t, ['set', 'staging', 'token'], { cwd: project, input: 'from-stdin-Secret-5' });
  t.is(same.stdout, 'no change: token already has this value in secrets/staging.yml.asc\n');
  t.deepEqual(readFileSync(asc), bytes);

  const port = await quiet(t, ['set', 'staging', 'port', '--yaml'], { cwd: project, input: '5432\n' });
  t.is(port.code, 0, port.stderr);
  const missing = await quiet(t, ['get', 'staging', 'nope'], { cwd: project });
  t.is(missing.code, 1);
  t.is(
    missing.stderr,
    // A port is too short to be hidden in output: a warning names its key (never its value).
    'warning: secrets/staging.yml.asc: the value of port is shorter than 6 characters, too short to be hidden ' +
      'in output (values that short would hide ordinary words): make it longer, or mark the tasks that print ' +
      'it sensitive\n' +
      'error: no key "nope" in secrets/staging.yml.asc\n  → its keys are: database_url, api_key, token, port\n',
  );
  const empty = await quiet(t, ['set', 'staging', 'blank'], { cwd: project, input: '' });
  t.is(empty.code, 1);
});

test('decrypt refuses to write into a file inside the project, not outside', async (t) => {
  const { project } = await stagingProject(t);
  const decryptInto = async (file: string) => {
    const fd = openSync(file, 'w', 0o600);
    try {
      return await collect(startSecrets(['decrypt', 'staging'], { cwd: project, stdoutFd: fd }));
    } finally {
      closeSync(fd);
    }
  };
  const inside = join(project, 'secrets', 'staging.yml');
  const refused = await decryptInto(inside);
  t.is(refused.code, 1);
  t.regex(
    refused.stderr,
    /^error: refusing to write decrypted secrets into secrets\/staging\.yml, a file inside the project/,
  );
  t.is(readFileSync(inside, 'utf8'), '');

  const outside = join(tmpdir(), `verdandi-decrypt-test-${process.pid}.yml`);
  t.teardown(() => rmSync(outside, { force: true }));
  const allowed = await decryptInto(outside);
  t.is(allowed.code, 0, allowed.stderr);
  t.is(readFileSync(outside, 'utf8'), SECRET_TEXT);
});

async function makeKeyFiles(project: string, name: string, passphrase?: string) {
  const { privateKey, publicKey } = await openpgp.generateKey({
    userIDs: [{ name, email: `${name}@example.invalid` }],
    passphrase,
    format: 'armored',
  });
  mkdirSync(join(project, 'secrets', 'keys'), { recursive: true });
  writeFileSync(join(project, 'secrets', 'keys', `${name}.asc`), publicKey);
  const privateFile = join(project, `${name}.private.asc`);
  writeFileSync(privateFile, privateKey, { mode: 0o600 });
  return privateFile;
}

test('public keys: encrypted to the recipients, opened with $VERDANDI_PGP_KEY, told when not ours', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  const alice = await makeKeyFiles(project, 'alice', 'key-passphrase-9');
  const bob = await makeKeyFiles(project, 'bob');
  writeFileSync(join(project, 'secrets', 'staging.recipients'), '# team\nalice.asc\n');
  const plain = join(project, 'plain.yml');
  writeFileSync(plain, SECRET_TEXT);

  // No password at hand and a recipient listed: keys only, nothing asked.
  const enc = await quiet(t, ['encrypt', 'staging', plain], { cwd: project });
  t.is(enc.code, 0, enc.stderr);
  t.regex(enc.stdout, /encrypted to secrets\/keys\/alice\.asc\)/);

  const withKey = { VERDANDI_PGP_KEY: alice, VERDANDI_PGP_PASSPHRASE: 'key-passphrase-9' };
  t.is((await runSecrets(['view', 'staging'], { cwd: project, env: withKey })).stdout, SECRET_TEXT);

  const wrongPassphrase = await quiet(t, ['view', 'staging'], {
    cwd: project,
    env: { VERDANDI_PGP_KEY: alice, VERDANDI_PGP_PASSPHRASE: 'nope' },
  });
  t.is(wrongPassphrase.code, 1);
  t.regex(wrongPassphrase.stderr, /^error: wrong passphrase for the private key in /);

  const notOurs = await quiet(t, ['view', 'staging'], { cwd: project, env: { VERDANDI_PGP_KEY: bob } });
  t.is(notOurs.code, 1);
  t.regex(
    notOurs.stderr,
    /^error: secrets\/staging\.yml\.asc is encrypted to other keys \(secrets\/keys\/alice\.asc\)/,
  );
  t.regex(notOurs.stderr, /the key in \$VERDANDI_PGP_KEY is not one of them/);

  // Bob joins: add him, rekey (Alice's key opens it), then Bob opens it; the content is the same.
  writeFileSync(join(project, 'secrets', 'staging.recipients'), '# team\nalice.asc\n- keys/bob.asc\n');
  const rekey = await quiet(t, ['rekey', 'staging'], { cwd: project, env: withKey });
  t.is(rekey.code, 0, rekey.stderr);
  t.is(
    rekey.stdout,
    'rekeyed staging: secrets/staging.yml.asc encrypted to secrets/keys/alice.asc, secrets/keys/bob.asc\n',
  );
  t.is(
    (await runSecrets(['view', 'staging'], { cwd: project, env: { VERDANDI_PGP_KEY: bob } })).stdout,
    SECRET_TEXT,
  );

  // Bob edits: re-encrypted to both keys again.
  const editor = script(project, 'edit.sh', `echo 'more: more-value' >> "$1"`);
  const edit = await quiet(t, ['edit', 'staging'], {
    cwd: project,
    env: { VERDANDI_PGP_KEY: bob, EDITOR: editor },
  });
  t.is(edit.code, 0, edit.stderr);
  t.is(
    (await runSecrets(['view', 'staging'], { cwd: project, env: withKey })).stdout,
    `${SECRET_TEXT}more: more-value\n`,
  );

  // A private key among the public ones is refused.
  writeFileSync(join(project, 'secrets', 'keys', 'bob.asc'), readFileSync(bob));
  const leak = await quiet(t, ['edit', 'staging'], { cwd: project, env: { ...withKey, EDITOR: 'true' } });
  t.is(leak.code, 1);
  t.regex(leak.stderr, /^error: secrets\/keys\/bob\.asc holds a PRIVATE key/);
});

test('rekey: a new password (the env password file follows), then password plus keys, then keys only', async (t) => {
  const { project } = await stagingProject(t);
  const newFile = join(project, 'new-pw');
  writeFileSync(newFile, 'the-New-Pw-2\n', { mode: 0o600 });
  const asc = join(project, 'secrets', 'staging.yml.asc');
  const before = readFileSync(asc);
  const noNewPassword = await quiet(t, ['rekey', 'staging'], { cwd: project });
  t.is(noNewPassword.code, 1);
  t.regex(
    noNewPassword.stderr,
    /^error: rekey staging: no new password given\n {2}→ run it on a terminal, or pass/,
  );
  t.deepEqual(readFileSync(asc), before);
  const rekey = await quiet(t, ['rekey', 'staging', '--new-vault-password-file', newFile], { cwd: project });
  t.is(rekey.code, 0, rekey.stderr);
  t.is(
    rekey.stdout,
    'rekeyed staging: secrets/staging.yml.asc encrypted to password\n' +
      'updated secrets/staging.vault-password with the new password\n',
  );
  t.is(readFileSync(join(project, 'secrets', 'staging.vault-password'), 'utf8'), 'the-New-Pw-2\n');
  t.is(statSync(join(project, 'secrets', 'staging.vault-password')).mode & 0o777, 0o600);
  t.is((await runSecrets(['view', 'staging'], { cwd: project })).stdout, SECRET_TEXT);
  const old = await runSecrets(['view', 'staging'], {
    cwd: project,
    env: { VERDANDI_VAULT_PASSWORD: PASSWORD },
  });
  t.is(old.stdout, SECRET_TEXT, 'the password file comes before the variable');

  const alice = await makeKeyFiles(project, 'alice');
  writeFileSync(join(project, 'secrets', 'staging.recipients'), 'alice.asc\n');
  const both = await quiet(t, ['rekey', 'staging', '--keep-password'], { cwd: project });
  t.is(
    both.stdout,
    'rekeyed staging: secrets/staging.yml.asc encrypted to password, secrets/keys/alice.asc\n',
  );
  t.is((await runSecrets(['view', 'staging'], { cwd: project })).stdout, SECRET_TEXT);

  const keysOnly = await quiet(t, ['rekey', 'staging', '--no-password'], { cwd: project });
  t.is(keysOnly.stdout, 'rekeyed staging: secrets/staging.yml.asc encrypted to secrets/keys/alice.asc\n');
  const byPassword = await quiet(t, ['view', 'staging'], { cwd: project });
  t.is(byPassword.code, 1);
  t.regex(byPassword.stderr, /encrypted to other keys/);
  t.is(
    (await runSecrets(['view', 'staging'], { cwd: project, env: { VERDANDI_PGP_KEY: alice } })).stdout,
    SECRET_TEXT,
  );

  const noTerminal = await quiet(t, ['rekey', 'staging'], { cwd: project, env: { VERDANDI_PGP_KEY: alice } });
  t.is(noTerminal.code, 0, 'keys only and no password flag: re-encrypted to the recipients, nothing asked');
});

test('encrypt: invalid YAML is refused with file:line:column', async (t) => {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  writePasswordFile(project, 'staging', PASSWORD);
  const plain = join(project, 'bad.yml');
  writeFileSync(plain, 'a: 1\nb: [Bad-Yaml-Secret-3\n');
  const r = await quiet(t, ['encrypt', 'staging', plain], { cwd: project });
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: .*bad\.yml:\d+:\d+: invalid secrets YAML: /);
  t.false(existsSync(join(project, 'secrets', 'staging.yml.asc')));
});

test('git-setup: decrypted git diff, and a pre-commit hook refusing plaintext and password files', async (t) => {
  const { project } = await stagingProject(t);
  const setup = await quiet(t, ['git-setup'], { cwd: project });
  t.is(setup.code, 0, setup.stderr);
  t.is(readFileSync(join(project, '.gitattributes'), 'utf8'), 'secrets/*.yml.asc diff=verdandi-secrets\n');
  t.regex(readFileSync(join(project, '.gitignore'), 'utf8'), /^\*\.vault-password$/m);
  t.regex(git(project, ['config', 'diff.verdandi-secrets.textconv']).stdout, /secrets textconv/);
  t.is(git(project, ['config', 'diff.verdandi-secrets.cachetextconv']).stdout.trim(), 'false');

  t.is(git(project, ['add', '.gitattributes', '.gitignore', 'secrets/staging.yml.asc']).code, 0);
  const commit = git(project, ['commit', '-q', '-m', 'secrets']);
  t.is(commit.code, 0, commit.stderr);

  const set = await quiet(t, ['set', 'staging', 'api_key'], { cwd: project, input: 'rotated-key-value\n' });
  t.is(set.code, 0, set.stderr);
  const diff = git(project, ['diff', 'secrets/staging.yml.asc']);
  t.is(diff.code, 0, diff.stderr);
  t.regex(diff.stdout, new RegExp(`^-api_key: ${API_KEY}$`, 'm'));
  t.regex(diff.stdout, /^\+api_key: rotated-key-value$/m);

  // The hook: a password file (forced past .gitignore) and a decrypted file are refused.
  t.is(git(project, ['add', '-f', 'secrets/staging.vault-password']).code, 0);
  const refused = git(project, ['commit', '-q', '-m', 'oops']);
  t.not(refused.code, 0);
  t.regex(
    refused.stderr,
    /verdandi: refusing to commit the vault password file secrets\/staging\.vault-password/,
  );
  git(project, ['rm', '-q', '--cached', 'secrets/staging.vault-password']);
  writeFileSync(join(project, 'secrets', 'staging.yml'), 'plain: text\n');
  t.is(git(project, ['add', '-f', 'secrets/staging.yml']).code, 0);
  const plain = git(project, ['commit', '-q', '-m', 'oops']);
  t.not(plain.code, 0);
  t.regex(plain.stderr, /refusing to commit the decrypted secrets file secrets\/staging\.yml/);
  git(project, ['rm', '-q', '--cached', 'secrets/staging.yml']);
  // An encrypted change goes through.
  t.is(git(project, ['add', 'secrets/staging.yml.asc']).code, 0);
  const ok = git(project, ['commit', '-q', '-m', 'rotate']);
  t.is(ok.code, 0, ok.stderr);
});
