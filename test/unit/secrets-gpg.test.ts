/**
 * Team members decrypt with their own gpg: a secrets file encrypted to recipients opens with the key in
 * the user's keyring, through gpg-agent and its pinentry, without `$VERDANDI_PGP_KEY`. Each test has a
 * throwaway GNUPGHOME whose agent uses a pinentry that answers from a file (and notes each question).
 */

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type * as openpgp from 'openpgp';
import { encryptText, readKeysFile } from '../../src/secrets/pgp.js';
import { cleanEnv, gnupgHomeFor, gpg, makeProject, runSecrets } from '../fixtures/secrets/helpers.js';
import { runCli } from '../helpers/cli.js';

const TEXT = 'database_url: "postgres://app:Gp9-secret@db/app"\napi_key: k3y-GPG\n';
const PASSPHRASE = 'alice passphrase';

interface Member {
  home: string;
  /** Lines the pinentry wrote, one per passphrase it was asked for. */
  asked: () => number;
  /** What the pinentry answers from now on. */
  answer: (passphrase: string) => void;
  publicKey: string;
}

/** A gpg home with a passphrase-protected key (ed25519 + cv25519) and a pinentry answering from a file. */
function member(t: ExecutionContext, name: string): Member {
  const home = gnupgHomeFor(t);
  const answerFile = join(home, 'pinentry-answer');
  const log = join(home, 'pinentry-log');
  writeFileSync(answerFile, PASSPHRASE);
  const pinentry = join(home, 'pinentry.sh');
  // The Assuan protocol of pinentry, as much as gpg-agent uses: OK to everything, the PIN on GETPIN.
  writeFileSync(
    pinentry,
    `#!/bin/sh
echo "OK Pleased to meet you"
while IFS= read -r line; do
  case "$line" in
    GETPIN*) echo asked >> '${log}'; printf 'D %s\\n' "$(cat '${answerFile}')"; echo OK ;;
    BYE*) echo OK; exit 0 ;;
    *) echo OK ;;
  esac
done
`,
  );
  chmodSync(pinentry, 0o755);
  writeFileSync(join(home, 'gpg-agent.conf'), `pinentry-program ${pinentry}\n`);
  const made = gpg(home, [
    '--passphrase',
    PASSPHRASE,
    '--quick-gen-key',
    `${name} <${name}@example.invalid>`,
    'future-default',
    'default',
    'never',
  ]);
  t.is(made.code, 0, made.stderr);
  const exported = gpg(home, ['--armor', '--export', `${name}@example.invalid`]);
  t.is(exported.code, 0, exported.stderr);
  // Forget the passphrase typed to make the key: the first decryption must ask for it.
  spawnSync('gpgconf', ['--reload', 'gpg-agent'], { env: cleanEnv({ GNUPGHOME: home }) });
  return {
    home,
    asked: () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).length : 0),
    answer: (passphrase) => writeFileSync(answerFile, passphrase),
    publicKey: exported.stdout,
  };
}

/** A project whose staging secrets are encrypted to `recipients` (and a password when given). */
async function projectFor(t: ExecutionContext, recipients: Member[], password?: string): Promise<string> {
  const project = makeProject();
  t.teardown(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(join(project, 'secrets', 'keys'));
  const keys: openpgp.PublicKey[] = [];
  const lines: string[] = [];
  for (const [i, m] of recipients.entries()) {
    const file = join(project, 'secrets', 'keys', `member${i}.asc`);
    writeFileSync(file, m.publicKey);
    keys.push((await readKeysFile(file))[0] as openpgp.PublicKey);
    lines.push(`member${i}.asc`);
  }
  writeFileSync(join(project, 'secrets', 'staging.recipients'), `${lines.join('\n')}\n`);
  const armored = await encryptText(TEXT, { passwords: password ? [password] : [], keys });
  writeFileSync(join(project, 'secrets', 'staging.yml.asc'), armored);
  return project;
}

test('a recipient decrypts with the key in their gpg keyring, the passphrase asked by pinentry', async (t) => {
  const alice = member(t, 'alice');
  const project = await projectFor(t, [alice]);
  const before = readFileSync(join(project, 'secrets', 'staging.yml.asc'), 'utf8');
  const res = await runSecrets(['view', 'staging'], { cwd: project, env: { GNUPGHOME: alice.home } });
  t.is(res.code, 0, res.stderr);
  t.is(res.stdout, TEXT);
  t.is(alice.asked(), 1, 'pinentry was asked once');
  // The agent keeps the passphrase for a while, as gpg users expect: no second question.
  const again = await runSecrets(['get', 'staging', 'api_key'], {
    cwd: project,
    env: { GNUPGHOME: alice.home },
  });
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout.trim(), 'k3y-GPG');
  t.is(alice.asked(), 1);
  t.is(readFileSync(join(project, 'secrets', 'staging.yml.asc'), 'utf8'), before);
});

test('a wrong passphrase is told as such, and nothing of the secrets shows', async (t) => {
  const alice = member(t, 'alice');
  alice.answer('not the passphrase');
  const project = await projectFor(t, [alice]);
  const res = await runSecrets(['view', 'staging'], { cwd: project, env: { GNUPGHOME: alice.home } });
  t.is(res.code, 1);
  t.is(res.stdout, '');
  t.regex(
    res.stderr,
    /^error: gpg could not unlock your key for secrets\/staging\.yml\.asc: wrong passphrase/,
  );
  t.false(res.stderr.includes('Gp9-secret'));
  t.true(alice.asked() >= 1);
});

test('a file for other members says whose keys open it and what to do', async (t) => {
  const alice = member(t, 'alice');
  const bob = member(t, 'bob');
  const project = await projectFor(t, [alice]);
  const res = await runSecrets(['view', 'staging'], { cwd: project, env: { GNUPGHOME: bob.home } });
  t.is(res.code, 1);
  t.regex(
    res.stderr,
    /^error: secrets\/staging\.yml\.asc is encrypted to other keys \(secrets\/keys\/member0\.asc\) and not to a password; your gpg has none of their secret keys/,
  );
  t.regex(res.stderr, /import your key into gpg \(or set \$VERDANDI_PGP_KEY to its file\)/);
  t.is(bob.asked(), 0, 'pinentry is not asked for a key that cannot open the file');
});

test('with a password at hand, the password opens the file and gpg is not asked', async (t) => {
  const alice = member(t, 'alice');
  const project = await projectFor(t, [alice], 'team pw');
  const res = await runSecrets(['view', 'staging'], {
    cwd: project,
    env: { GNUPGHOME: alice.home, VERDANDI_VAULT_PASSWORD: 'team pw' },
  });
  t.is(res.code, 0, res.stderr);
  t.is(res.stdout, TEXT);
  t.is(alice.asked(), 0);
});

test('edit with gpg: the file is encrypted again to the same recipients', async (t) => {
  const alice = member(t, 'alice');
  const project = await projectFor(t, [alice]);
  const editor = join(alice.home, 'editor.sh');
  writeFileSync(editor, '#!/bin/sh\nprintf "added: yes\\n" >> "$1"\n');
  chmodSync(editor, 0o755);
  const res = await runSecrets(['edit', 'staging'], {
    cwd: project,
    env: { GNUPGHOME: alice.home, EDITOR: editor },
  });
  t.is(res.code, 0, res.stderr);
  const decrypted = gpg(alice.home, [
    '--passphrase',
    PASSPHRASE,
    '--decrypt',
    join(project, 'secrets', 'staging.yml.asc'),
  ]);
  t.is(decrypted.code, 0, decrypted.stderr);
  t.is(decrypted.stdout, `${TEXT}added: yes\n`);
});

test('git diff (textconv) never asks: it uses a passphrase gpg-agent already has, else says why', async (t) => {
  const alice = member(t, 'alice');
  const project = await projectFor(t, [alice]);
  const file = join(project, 'secrets', 'staging.yml.asc');
  const cold = await runSecrets(['textconv', file], { cwd: project, env: { GNUPGHOME: alice.home } });
  t.is(cold.code, 0, cold.stderr);
  t.regex(
    cold.stdout,
    /^\[verdandi: cannot decrypt staging\.yml\.asc: gpg needs the passphrase of your key to open secrets\/staging\.yml\.asc, and cannot ask for it here\]\n$/,
  );
  t.is(alice.asked(), 0, 'pinentry was not asked');

  // Once the agent has the passphrase (a view asked for it), git diff shows the text.
  t.is((await runSecrets(['view', 'staging'], { cwd: project, env: { GNUPGHOME: alice.home } })).code, 0);
  const warm = await runSecrets(['textconv', file], { cwd: project, env: { GNUPGHOME: alice.home } });
  t.is(warm.code, 0, warm.stderr);
  t.is(warm.stdout, TEXT);
  t.is(alice.asked(), 1);
});

test('check: a key gpg cannot unlock without pinentry is a note, never a question; an unlocked one decrypts', async (t) => {
  const alice = member(t, 'alice');
  const project = await projectFor(t, [alice]);
  mkdirSync(join(project, 'inventories'));
  writeFileSync(
    join(project, 'inventories', 'staging.yml'),
    'hosts:\n  web1: { address: 127.0.0.1, port: 1, api: "{{ secrets.api_key }}", other: "{{ secrets.nope }}" }\n',
  );
  const env = { GNUPGHOME: alice.home, VERDANDI_VAULT_PASSWORD: '', VERDANDI_PGP_KEY: '' };
  const check = () => runCli(['check', 'staging', '--json'], { cwd: project, env });

  const locked = await check();
  t.is(locked.code, 0, locked.stdout + locked.stderr);
  t.is(alice.asked(), 0, 'check never starts pinentry');
  t.regex(
    JSON.parse(locked.stdout).notes.join('\n'),
    /^secrets\/staging\.yml\.asc is an OpenPGP message encrypted to 1 key, not decrypted: gpg needs the passphrase of your key .*Not verified: that it decrypts, and that it has secrets\.api_key, secrets\.nope /,
  );

  // Once the agent holds the passphrase (a command that could ask did), check decrypts with gpg.
  const viewed = await runSecrets(['view', 'staging'], { cwd: project, env: { GNUPGHOME: alice.home } });
  t.is(viewed.code, 0, viewed.stderr);
  const unlocked = await check();
  t.is(unlocked.code, 1, unlocked.stdout + unlocked.stderr);
  const report = JSON.parse(unlocked.stdout);
  t.deepEqual(report.notes, []);
  t.is(report.errors.length, 1);
  t.regex(report.errors[0].message, /refers to secrets\.nope, which the secrets do not have/);
  t.notRegex(unlocked.stdout, /k3y-GPG/);
  t.is(alice.asked(), 1, 'only the view asked');
});
