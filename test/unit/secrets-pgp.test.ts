/**
 * The OpenPGP format of the secrets: round trips to a password, to public keys, to both; and
 * interoperability with Debian's gnupg both ways (nobody is locked in).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import * as openpgp from 'openpgp';
import {
  decryptWithKey,
  decryptWithPassword,
  encryptText,
  readKeysFile,
  readSealed,
} from '../../src/secrets/pgp.js';
import { UserError } from '../../src/util/errors.js';
import { gnupgHomeFor, gpg } from '../fixtures/secrets/helpers.js';

const TEXT =
  '# staging\ndatabase_url: "postgres://app:Ql9-secret@db/app"\napi_key: k3y-ABCDEF\nnested:\n  a: 1\n';
const origin = { shown: 'secrets/staging.yml.asc', origin: 'the test' };

async function makeKeyPair(passphrase?: string) {
  const { privateKey, publicKey } = await openpgp.generateKey({
    userIDs: [{ name: 'Alice', email: 'alice@example.invalid' }],
    passphrase,
    format: 'armored',
  });
  return {
    armoredPrivate: privateKey,
    publicKey: await openpgp.readKey({ armoredKey: publicKey }),
    privateKey: await openpgp.readPrivateKey({ armoredKey: privateKey }),
  };
}

test('password: round trip gives back the exact text, newlines included', async (t) => {
  const armored = await encryptText(TEXT, { passwords: ['correct horse'], keys: [] });
  t.true(armored.startsWith('-----BEGIN PGP MESSAGE-----'));
  t.false(armored.includes('Ql9-secret'));
  const sealed = await readSealed(armored, origin.shown);
  t.true(sealed.passwordProtected);
  t.deepEqual(sealed.keyIds, []);
  t.is(await decryptWithPassword(sealed, 'correct horse', origin), TEXT);
});

test('public key: round trip; another key cannot open it', async (t) => {
  const alice = await makeKeyPair();
  const bob = await makeKeyPair();
  const armored = await encryptText(TEXT, { passwords: [], keys: [alice.publicKey] });
  const sealed = await readSealed(armored, origin.shown);
  t.false(sealed.passwordProtected);
  t.is(sealed.keyIds.length, 1);
  t.is(await decryptWithKey(sealed, alice.privateKey, origin.shown), TEXT);
  const error = await t.throwsAsync(decryptWithKey(sealed, bob.privateKey, origin.shown), {
    instanceOf: UserError,
  });
  t.regex(error.message, /could not open secrets\/staging\.yml\.asc/);
});

test('password and two keys: each opens it alone', async (t) => {
  const alice = await makeKeyPair();
  const bob = await makeKeyPair();
  const armored = await encryptText(TEXT, { passwords: ['pw-both'], keys: [alice.publicKey, bob.publicKey] });
  const sealed = await readSealed(armored, origin.shown);
  t.true(sealed.passwordProtected);
  t.is(sealed.keyIds.length, 2);
  t.is(await decryptWithPassword(sealed, 'pw-both', origin), TEXT);
  t.is(await decryptWithKey(await readSealed(armored, origin.shown), alice.privateKey, origin.shown), TEXT);
  t.is(await decryptWithKey(await readSealed(armored, origin.shown), bob.privateKey, origin.shown), TEXT);
});

test('a wrong password is told as such', async (t) => {
  const sealed = await readSealed(await encryptText(TEXT, { passwords: ['right'], keys: [] }), origin.shown);
  const error = await t.throwsAsync(decryptWithPassword(sealed, 'wrong', origin), { instanceOf: UserError });
  // Told by the session key's quick check; in the rare case a wrong password yields a key of a cipher
  // Node cannot check (Twofish, 1 in 256), the message names both causes, the wrong password first.
  t.regex(
    error.message,
    /^(wrong password for secrets\/staging\.yml\.asc \(password from the test\), or a file encrypted for another password or key|secrets\/staging\.yml\.asc could not be decrypted: either the password is wrong \(password from the test\))/,
  );
});

test('a wrong password is never taken for damage (many wrong passwords)', async (t) => {
  const sealed = await readSealed(await encryptText(TEXT, { passwords: ['right'], keys: [] }), origin.shown);
  for (let i = 0; i < 300; i++) {
    const error = await t.throwsAsync(decryptWithPassword(sealed, `wrong-${i}`, origin), {
      instanceOf: UserError,
    });
    t.notRegex(error.message, /the password or key is right/, `wrong-${i}`);
  }
});

test('truncated and corrupted files are told apart from a wrong password', async (t) => {
  const armored = await encryptText(TEXT, { passwords: ['right'], keys: [] });
  const truncated = await t.throwsAsync(readSealed(armored.slice(0, armored.length / 2), origin.shown), {
    instanceOf: UserError,
  });
  t.regex(truncated.message, /is not a readable OpenPGP message \(corrupted or truncated\)/);

  // Flip one character of the encrypted data (not the session key packet at the start, nor the
  // prefix the session key is checked on: the line before the last), and drop the armor checksum so
  // the damage reaches the integrity check.
  const lines = armored.split('\n');
  const body = lines.findIndex((l) => l.startsWith('=')) - 2;
  const line = lines[body];
  lines[body] = line.slice(0, 10) + (line[10] === 'A' ? 'B' : 'A') + line.slice(11);
  const damaged = lines.filter((l) => !/^=[A-Za-z0-9+/]{4}$/.test(l)).join('\n');
  const error = await t.throwsAsync(
    (async () => decryptWithPassword(await readSealed(damaged, origin.shown), 'right', origin))(),
    { instanceOf: UserError },
  );
  t.regex(error.message, /its data is corrupted or truncated \(integrity check failed\)/);
});

test('gpg decrypts a password-encrypted file with --passphrase-file', async (t) => {
  const home = gnupgHomeFor(t);
  const file = join(home, 'staging.yml.asc');
  const passwordFile = join(home, 'pw');
  writeFileSync(file, await encryptText(TEXT, { passwords: ['gpg interop pw'], keys: [] }));
  writeFileSync(passwordFile, 'gpg interop pw\n', { mode: 0o600 });
  const result = gpg(home, ['--passphrase-file', passwordFile, '--decrypt', file]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, TEXT);
});

test('gpg decrypts a file encrypted to a key, once the private key is imported', async (t) => {
  const alice = await makeKeyPair();
  const home = gnupgHomeFor(t);
  const file = join(home, 'staging.yml.asc');
  writeFileSync(file, await encryptText(TEXT, { passwords: [], keys: [alice.publicKey] }));
  t.is(gpg(home, ['--import'], alice.armoredPrivate).code, 0);
  const result = gpg(home, ['--decrypt', file]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, TEXT);
});

test('a key made by gpg is a recipient; gpg opens the file; a file gpg encrypts opens here', async (t) => {
  const home = gnupgHomeFor(t);
  const made = gpg(home, [
    '--passphrase',
    '',
    '--quick-gen-key',
    'Gpg User <gpg@example.invalid>',
    'default',
    'default',
    'never',
  ]);
  t.is(made.code, 0, made.stderr);
  const exported = gpg(home, ['--armor', '--export', 'gpg@example.invalid']);
  const keyFile = join(home, 'gpg-user.asc');
  writeFileSync(keyFile, exported.stdout);
  const [publicKey] = await readKeysFile(keyFile);

  const file = join(home, 'staging.yml.asc');
  writeFileSync(file, await encryptText(TEXT, { passwords: [], keys: [publicKey as openpgp.PublicKey] }));
  const result = gpg(home, ['--decrypt', file]);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, TEXT);

  // The other way: gpg --symmetric, opened with the password here.
  const symmetric = gpg(home, ['--passphrase', 'from gpg', '--symmetric', '--armor', '--output', '-'], TEXT);
  t.is(symmetric.code, 0, symmetric.stderr);
  t.is(await decryptWithPassword(await readSealed(symmetric.stdout, origin.shown), 'from gpg', origin), TEXT);
});
