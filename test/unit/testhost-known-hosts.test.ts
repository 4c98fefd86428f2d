/**
 * What `testhost up/down` do to a project's `.verdandi/known_hosts`: the editing functions of
 * src/connection/known-hosts.ts (pure text in, text out) and the file edit, plus reading a host's
 * public keys from its overlay. The whole cycle on real hosts is test/e2e/testhost-quickstart.test.ts.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  checkHostKey,
  editKnownHostsFile,
  knownHostsFile,
  parseKnownHosts,
  parsePublicKey,
  withHostKeys,
  withoutHost,
} from '../../src/connection/known-hosts.js';
import { hostPublicKeys } from '../../src/testhost/machine.js';
import { hostPaths, layout } from '../../src/testhost/naming.js';

const ED = { type: 'ssh-ed25519', key: 'AAAAC3NzaC1lZDI1NTE5AAAAINEW' };
const RSA = { type: 'ssh-rsa', key: 'AAAAB3NzaC1yc2EAAAADAQABAAABgQNEW' };

test('the project known_hosts is .verdandi/known_hosts', (t) => {
  t.is(knownHostsFile('/p'), join('/p', '.verdandi', 'known_hosts'));
});

test('parsePublicKey reads an OpenSSH .pub file and refuses anything else', (t) => {
  t.deepEqual(parsePublicKey('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINEW root@web1\n'), ED);
  t.deepEqual(parsePublicKey('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQNEW'), RSA);
  t.is(parsePublicKey(''), undefined);
  t.is(parsePublicKey('ssh-ed25519'), undefined);
  t.is(parsePublicKey('ssh-ed25519 not;base64'), undefined);
});

test('withoutHost drops every line of that host and keeps the rest byte for byte', (t) => {
  const text = [
    '# my hosts',
    '10.231.1.2 ssh-ed25519 AAAAOLD1',
    '',
    '10.231.1.20 ssh-ed25519 AAAAOTHER',
    '[10.231.1.2]:2222 ssh-ed25519 AAAAPORT',
    '10.231.1.2 ssh-rsa AAAAOLD2',
    '  indented.example   ssh-rsa   AAAAKEEP  ',
    '',
  ].join('\n');
  t.is(
    withoutHost(text, '10.231.1.2'),
    [
      '# my hosts',
      '',
      '10.231.1.20 ssh-ed25519 AAAAOTHER',
      '[10.231.1.2]:2222 ssh-ed25519 AAAAPORT',
      '  indented.example   ssh-rsa   AAAAKEEP  ',
      '',
    ].join('\n'),
  );
  // A port other than 22 is a host of its own, as in OpenSSH.
  t.is(withoutHost(text, '[10.231.1.2]:2222'), text.replace('[10.231.1.2]:2222 ssh-ed25519 AAAAPORT\n', ''));
  t.is(withoutHost(text, '10.9.9.9'), text, 'nothing of an unknown host: unchanged');
});

test('withoutHost takes one name off a line that names several hosts', (t) => {
  const text = 'web1,10.231.1.2,web1.lan ssh-ed25519 AAAASHARED\n';
  t.is(withoutHost(text, '10.231.1.2'), 'web1,web1.lan ssh-ed25519 AAAASHARED\n');
  const remaining = parseKnownHosts(withoutHost(text, '10.231.1.2'));
  t.deepEqual(
    remaining.map((e) => e.pattern),
    ['web1', 'web1.lan'],
  );
});

test('withHostKeys replaces the stale keys of a host with its actual ones', (t) => {
  const stale = '10.231.1.2 ssh-ed25519 AAAAOLD\n10.231.3.2 ssh-ed25519 AAAAOTHER\n';
  const text = withHostKeys(stale, '10.231.1.2', [ED, RSA]);
  t.is(
    text,
    `10.231.3.2 ssh-ed25519 AAAAOTHER\n10.231.1.2 ${ED.type} ${ED.key}\n10.231.1.2 ${RSA.type} ${RSA.key}\n`,
  );
  t.false(text.includes('AAAAOLD'));
});

test('after withHostKeys the connection accepts the new key and refuses the old one', (t) => {
  // A wire-format key blob starts with its type, as ssh2 hands it to the host verifier.
  const blob = (type: string, body: string) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(type.length);
    return Buffer.concat([len, Buffer.from(type), Buffer.from(body)]);
  };
  const old = blob('ssh-ed25519', 'old host');
  const actual = blob('ssh-ed25519', 'new host');
  const stale = withHostKeys('', '10.231.1.2', [{ type: 'ssh-ed25519', key: old.toString('base64') }]);
  t.is(checkHostKey(parseKnownHosts(stale), '10.231.1.2', actual).kind, 'changed');
  const fresh = withHostKeys(stale, '10.231.1.2', [{ type: 'ssh-ed25519', key: actual.toString('base64') }]);
  t.deepEqual(checkHostKey(parseKnownHosts(fresh), '10.231.1.2', actual), { kind: 'known' });
  t.is(checkHostKey(parseKnownHosts(fresh), '10.231.1.2', old).kind, 'changed');
});

test('withHostKeys is idempotent and writes into an empty file', (t) => {
  const once = withHostKeys('', '10.231.1.2', [ED]);
  t.is(once, `10.231.1.2 ${ED.type} ${ED.key}\n`);
  t.is(withHostKeys(once, '10.231.1.2', [ED]), once);
  // A file without a final newline still gets whole lines.
  t.is(
    withHostKeys('a ssh-rsa AAAAA', '10.231.1.2', [ED]),
    `a ssh-rsa AAAAA\n10.231.1.2 ${ED.type} ${ED.key}\n`,
  );
  // No keys (a host whose keys could not be read): the stale ones still go, first contact records it.
  t.is(withHostKeys(once, '10.231.1.2', []), '');
});

test('editKnownHostsFile creates the file and its folder, edits in place, leaves no temp file', (t) => {
  const project = mkdtempSync(join(tmpdir(), 'vd-kh-edit-'));
  const file = knownHostsFile(project);
  editKnownHostsFile(file, (text) => withHostKeys(text, '10.231.1.2', [ED]));
  t.is(readFileSync(file, 'utf8'), `10.231.1.2 ${ED.type} ${ED.key}\n`);
  t.is(statSync(file).mode & 0o777, 0o644);
  editKnownHostsFile(file, (text) => withoutHost(text, '10.231.1.2'));
  t.is(readFileSync(file, 'utf8'), '');
  t.deepEqual(readdirSync(join(project, '.verdandi')), ['known_hosts']);
});

test('editKnownHostsFile does not create a file for an edit that changes nothing', (t) => {
  const project = mkdtempSync(join(tmpdir(), 'vd-kh-noop-'));
  editKnownHostsFile(knownHostsFile(project), (text) => withoutHost(text, '10.231.1.2'));
  t.false(existsSync(join(project, '.verdandi')));
});

test("hostPublicKeys reads the host's own keys from its overlay, sorted by type", async (t) => {
  const l = layout(mkdtempSync(join(tmpdir(), 'vd-kh-cache-')));
  const sshDir = join(hostPaths(l, 'web1').upperDir, 'etc', 'ssh');
  mkdirSync(sshDir, { recursive: true });
  writeFileSync(join(sshDir, 'ssh_host_rsa_key.pub'), `${RSA.type} ${RSA.key} root@build\n`);
  writeFileSync(join(sshDir, 'ssh_host_ed25519_key.pub'), `${ED.type} ${ED.key} root@build\n`);
  writeFileSync(join(sshDir, 'ssh_host_ed25519_key'), 'PRIVATE: never read');
  writeFileSync(join(sshDir, 'sshd_config'), 'Port 22\n');
  t.deepEqual(await hostPublicKeys(l, 'web1'), [ED, RSA]);
  t.deepEqual(await hostPublicKeys(l, 'no-such-host'), []);
});
