/**
 * Redaction of secret values in output (src/util/redact.ts): whole values, and every line of a
 * multi-line value (a PEM key) wherever it shows up on its own: diffs, output tails, JSON strings.
 * Serial: the registry of secrets is one per process.
 */
import { generateKeyPairSync } from 'node:crypto';
import test from 'ava';
import { createPatch } from 'diff';
import { clearSecrets, MIN_LINE_LENGTH, patternsOf, redact, registerSecret } from '../../src/util/redact.js';

test.beforeEach(() => clearSecrets());

/** A real PEM private key: 28 lines of base64 between the BEGIN and END lines. */
function pemKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Lines of the key long enough to be secrets on their own (all but blank ones). */
const keyLines = (key: string) =>
  key
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= MIN_LINE_LENGTH);

test.serial('a single-line secret is replaced whole, values under 6 characters are not matched', (t) => {
  registerSecret({ url: 'postgres://u:Sup3r-secret@db/app', pin: 'wrong', port: 54321, code: 654321 });
  t.is(redact('connecting to postgres://u:Sup3r-secret@db/app'), 'connecting to [secret]');
  t.is(redact('wrong password, port 54321, code 654321'), 'wrong password, port 54321, code [secret]');
});

test.serial('patternsOf: the value, its lines of 8+ characters, and their JSON-escaped forms', (t) => {
  t.deepEqual(patternsOf('one-line-secret'), ['one-line-secret']);
  t.deepEqual(patternsOf('first-line-long\nshort\n\n  second-line-long  \r\nthird"line"x\n'), [
    'first-line-long\nshort\n\n  second-line-long  \r\nthird"line"x\n',
    'first-line-long',
    'second-line-long',
    'third"line"x',
    'first-line-long\\nshort\\n\\n  second-line-long  \\r\\nthird\\"line\\"x\\n',
    'third\\"line\\"x',
  ]);
});

test.serial('every line of a PEM key is redacted in a unified diff of a file holding it', (t) => {
  const key = pemKey();
  registerSecret({ tls_key: key });
  const patch = redact(createPatch('/etc/ssl/private/site.key', 'old\n', `${key}`));
  for (const line of keyLines(key)) t.false(patch.includes(line), `diff shows ${line}`);
  t.regex(patch, /^\+\[secret\]$/m);
  t.true(patch.includes('-old'), 'the rest of the diff stays readable');
});

test.serial('a failed command output tail that starts mid-key shows none of its lines', (t) => {
  const key = pemKey();
  registerSecret(key);
  const lines = key.trimEnd().split('\n');
  const tail = `stdout:\n${lines.slice(10).join('\n')}\nerror: bad key`;
  const shown = redact(tail);
  for (const line of keyLines(key)) t.false(shown.includes(line));
  t.true(shown.endsWith('error: bad key'));
});

test.serial('--json: the key inside a JSON string (newlines escaped) shows no line either', (t) => {
  const key = pemKey();
  registerSecret({ nested: [{ key }] });
  const doc = JSON.stringify({ failure: `echo ${key.slice(200)}` }, null, 2);
  t.true(doc.includes('\\n'), 'the JSON carries the key with escaped newlines');
  const shown = redact(doc);
  for (const line of keyLines(key)) t.false(shown.includes(line));
  t.notThrows(() => JSON.parse(shown), 'still a valid JSON document');
});

test.serial('a line with quotes or backslashes is matched as JSON escapes it too', (t) => {
  registerSecret('user: "admin"\npassword: "c:\\very\\secret"\n');
  const shown = redact(JSON.stringify({ out: 'password: "c:\\very\\secret"' }));
  t.false(shown.includes('very'));
  t.is(JSON.parse(shown).out, '[secret]');
});

test.serial('short lines of a multi-line secret stay matchable only as part of the whole', (t) => {
  registerSecret('-----\nS3cretLineLongEnough\n-----\n');
  t.is(redact('-----'), '-----', 'a line of dashes alone is not a secret');
  t.is(redact('x S3cretLineLongEnough y'), 'x [secret] y');
});

test.serial('a value with a single quote is matched as a shell command quotes it', async (t) => {
  const { words } = await import('../../src/util/shell.js');
  registerSecret("it's-a-Secret\nand it's line two");
  const command = words('echo', "it's-a-Secret", 'x', "and it's line two");
  t.is(redact(command), "echo '[secret]' x '[secret]'");
});
