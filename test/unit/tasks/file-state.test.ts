import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { Task } from '../../../src/engine/types.js';
import {
  accountsProbe,
  attributeChanges,
  fileStateProbe,
  missingAccountError,
  type PresentFileState,
  parseFileState,
} from '../../../src/tasks/file-state.js';
import { markedLines } from '../../../src/tasks/probe-output.js';
import { runProbe, scratchDir } from './local-host.js';

/** A bare task around a probe fragment, to run it with the local helper. */
const probeOnly = (probe: string): Task => ({ probe, plan: () => ({ steps: [] }) }) as unknown as Task;

const rootFile: PresentFileState = { type: 'file', uid: 0, user: 'root', gid: 0, group: 'root', mode: 0o644 };

test('parseFileState reads a file line and ignores noise around it', (t) => {
  const stdout = [
    'Welcome to the host',
    'verdandi-stat file 33 www-data 33 www-data 640 abc123 -',
    'bye',
  ].join('\n');
  t.deepEqual(parseFileState(stdout), {
    type: 'file',
    uid: 33,
    user: 'www-data',
    gid: 33,
    group: 'www-data',
    mode: 0o640,
    sha256: 'abc123',
  });
});

test('parseFileState reads absent, links (base64 target), keyed lines, and rejects malformed lines', (t) => {
  t.deepEqual(parseFileState('verdandi-stat absent\n'), { type: 'absent' });
  const target = Buffer.from('/srv/app releases/1').toString('base64');
  t.like(parseFileState(`verdandi-stat link 0 root 0 root 777 - ${target}\n`), {
    type: 'link',
    linkTarget: '/srv/app releases/1',
  });
  t.deepEqual(parseFileState('verdandi-stat:a absent\nverdandi-stat dir 0 root 0 root 2775 - -'), {
    type: 'dir',
    uid: 0,
    user: 'root',
    gid: 0,
    group: 'root',
    mode: 0o2775,
  });
  t.deepEqual(parseFileState('verdandi-stat:a absent\n', 'a'), { type: 'absent' });
  t.is(parseFileState('verdandi-stat file 0 root 0 root\n'), undefined);
  t.is(parseFileState('verdandi-stat sock 0 root 0 root 644 - -\n'), undefined);
  t.is(parseFileState('verdandi-statistics absent\n'), undefined);
  t.is(parseFileState(''), undefined);
});

test('markedLines keeps only lines with the exact marker', (t) => {
  t.deepEqual(markedLines('x\nverdandi-a 1 2\nverdandi-ab 3\nverdandi-a\r\n', 'verdandi-a'), [
    ['1', '2'],
    [],
  ]);
});

test('fileStateProbe reports real files, directories, links and special files (paths with spaces and quotes)', (t) => {
  const dir = scratchDir(t);
  const file = join(dir, `a "quoted" file's name`);
  writeFileSync(file, 'hello\n');
  chmodSync(file, 0o640);
  const sub = join(dir, 'sub dir');
  mkdirSync(sub);
  chmodSync(sub, 0o750);
  const link = join(dir, 'the link');
  symlinkSync("target with 'quotes'\nand a newline", link);

  const fileState = parseFileState(runProbe(probeOnly(fileStateProbe(file, { checksum: true }))).stdout);
  t.like(fileState, {
    type: 'file',
    uid: process.getuid?.(),
    mode: 0o640,
    sha256: createHash('sha256').update('hello\n').digest('hex'),
  });
  t.like(parseFileState(runProbe(probeOnly(fileStateProbe(sub))).stdout), { type: 'dir', mode: 0o750 });
  t.like(parseFileState(runProbe(probeOnly(fileStateProbe(link))).stdout), {
    type: 'link',
    linkTarget: "target with 'quotes'\nand a newline",
  });
  t.like(parseFileState(runProbe(probeOnly(fileStateProbe('/dev/null'))).stdout), { type: 'other' });
  t.deepEqual(parseFileState(runProbe(probeOnly(fileStateProbe(join(dir, 'nothing here')))).stdout), {
    type: 'absent',
  });
  // Without checksum the file is not read.
  t.is(
    (parseFileState(runProbe(probeOnly(fileStateProbe(file))).stdout) as PresentFileState).sha256,
    undefined,
  );
});

test('two keyed state probes in one script are told apart', (t) => {
  const dir = scratchDir(t);
  const probe = `${fileStateProbe(dir, { key: 'one' })}\n${fileStateProbe(join(dir, 'missing'), { key: 'two' })}`;
  const { stdout } = runProbe(probeOnly(probe));
  t.like(parseFileState(stdout, 'one'), { type: 'dir' });
  t.deepEqual(parseFileState(stdout, 'two'), { type: 'absent' });
});

test('accountsProbe finds existing accounts with getent and names missing ones', (t) => {
  const present = runProbe(probeOnly(accountsProbe({ owner: 'root', group: 'root' }))).stdout;
  t.is(missingAccountError(present, { owner: 'root', group: 'root' }), undefined);

  const accounts = { owner: 'verdandi-no-such-user', group: 'verdandi-no-such-group' };
  const missing = runProbe(probeOnly(accountsProbe(accounts))).stdout;
  t.is(
    missingAccountError(missing, accounts),
    'user "verdandi-no-such-user" and group "verdandi-no-such-group" do not exist on the host: create them with a user()/group() task before this one',
  );
  // Numeric ids are not looked up: chown takes any number.
  t.is(accountsProbe({ owner: '4242', group: '4242' }), '');
});

test('attributeChanges compares modes numerically and owners by name or uid', (t) => {
  t.deepEqual(attributeChanges('/etc/x', rootFile, { owner: 'root', group: '0', mode: '0644' }), {
    steps: [],
    reasons: [],
    ownerDiffers: false,
    modeDiffers: false,
  });
  t.deepEqual(attributeChanges('/etc/x', rootFile, { owner: 'www-data', mode: '0600' }), {
    steps: [
      { kind: 'run', command: 'chown www-data /etc/x' },
      { kind: 'run', command: 'chmod 00600 /etc/x' },
    ],
    reasons: ['owner root → www-data', 'mode 0644 → 0600'],
    ownerDiffers: true,
    modeDiffers: true,
  });
  t.deepEqual(attributeChanges('/etc/x', rootFile, { group: 'adm' }).steps, [
    { kind: 'run', command: 'chown :adm /etc/x' },
  ]);
});

test('attributeChanges sets a setuid mode again after chown (which clears it)', (t) => {
  const setuid = { ...rootFile, mode: 0o4755 };
  t.deepEqual(attributeChanges('/usr/local/bin/x', setuid, { owner: 'nobody', mode: '4755' }).steps, [
    { kind: 'run', command: 'chown nobody /usr/local/bin/x' },
    { kind: 'run', command: 'chmod 04755 /usr/local/bin/x' },
  ]);
});

test('attributeChanges on a link uses chown -h and never chmod', (t) => {
  const link: PresentFileState = { ...rootFile, type: 'link', mode: 0o777 };
  t.deepEqual(
    attributeChanges('/srv/current', link, { owner: 'nobody', mode: '0644' }, { link: true }).steps,
    [{ kind: 'run', command: 'chown -h nobody /srv/current' }],
  );
});
