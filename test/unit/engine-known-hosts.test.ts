import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  checkHostKey,
  hostPattern,
  KnownHosts,
  keyType,
  parseKnownHosts,
} from '../../src/connection/known-hosts.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}

test('host patterns follow OpenSSH', (t) => {
  t.is(hostPattern('10.0.0.1', 22), '10.0.0.1');
  t.is(hostPattern('10.0.0.1', 2222), '[10.0.0.1]:2222');
});

test('first contact records the key, same key is known, another key is refused', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'vd-kh-')), 'known_hosts');
  const kh = new KnownHosts(file);
  const k1 = blob('ssh-ed25519', 'one');
  t.is(keyType(k1), 'ssh-ed25519');
  t.deepEqual(kh.verify('10.1.1.1', 22, k1), { kind: 'new' });
  t.true(readFileSync(file, 'utf8').startsWith('10.1.1.1 ssh-ed25519 '));
  t.deepEqual(kh.verify('10.1.1.1', 22, k1), { kind: 'known' });
  t.deepEqual(kh.verify('10.1.1.1', 22, blob('ssh-ed25519', 'two')), { kind: 'changed', line: 1 });
  // Another key type for the same host is simply new (OpenSSH does the same).
  t.deepEqual(kh.verify('10.1.1.1', 22, blob('ssh-rsa', 'x')), { kind: 'new' });
});

test('parseKnownHosts skips comments and splits comma patterns', (t) => {
  const entries = parseKnownHosts('# c\nh1,h2 ssh-ed25519 AAAA\n\n');
  t.is(entries.length, 2);
  t.deepEqual(checkHostKey(entries, 'h2', blob('ssh-ed25519', 'zz')), { kind: 'changed', line: 2 });
});

test('a file read once per run still sees what was appended, and what another process wrote', (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'vd-kh-')), 'known_hosts');
  const kh = new KnownHosts(file);
  for (let i = 1; i <= 3; i++)
    t.deepEqual(kh.verify(`10.1.1.${i}`, 22, blob('ssh-ed25519', `k${i}`)), { kind: 'new' });
  // Line numbers of appended keys are right (the message names the line to delete).
  t.deepEqual(kh.verify('10.1.1.3', 22, blob('ssh-ed25519', 'other')), { kind: 'changed', line: 3 });
  // Another process rewrites the file (testhost up replacing a host's key): seen at once.
  const k = blob('ssh-ed25519', 'fresh');
  writeFileSync(file, `# comment\n10.1.1.2 ${keyType(k)} ${k.toString('base64')}\n`);
  t.deepEqual(kh.verify('10.1.1.2', 22, k), { kind: 'known' });
  t.deepEqual(new KnownHosts(file).verify('10.1.1.2', 22, blob('ssh-ed25519', 'k2')), {
    kind: 'changed',
    line: 2,
  });
});
