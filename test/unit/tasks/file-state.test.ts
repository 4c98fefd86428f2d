import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { FileQuery, FileState, Task } from '../../../src/engine/types.js';
import {
  accountsProbe,
  attributeChanges,
  fileStateProbeOf,
  fileStatesScript,
  missingAccountError,
  type PresentFileState,
  parseFileState,
  parseFileStates,
} from '../../../src/tasks/file-state.js';
import { markedLines } from '../../../src/tasks/probe-output.js';
import { quote } from '../../../src/util/shell.js';
import { runProbe, scratchDir } from './local-host.js';

/** A bare task around a probe fragment, to run it with the local helper. */
const probeOnly = (probe: string): Task => ({ probe, plan: () => ({ steps: [] }) }) as unknown as Task;

/** The state fragment for a path the test knows (the engine's own use passes a shell variable). */
const fileStateProbe = (path: string, opts: { checksum?: boolean; key?: string } = {}) =>
  fileStateProbeOf(quote(path), opts);

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

test('fileStateProbeOf reports real files, directories, links and special files (paths with spaces and quotes)', (t) => {
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

/**
 * Runs `fileStatesScript(queries)` with sh, as a batch does (the script on stdin, stderr dropped), within
 * 10 s (a FIFO read by mistake would hang).
 */
function statesOf(queries: FileQuery[]): Map<string, FileState> {
  const script = fileStatesScript(queries);
  const run = spawnSync('sh', [], {
    input: `( ${script}\n) </dev/null 2>/dev/null`,
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (run.error) throw run.error;
  const states = parseFileStates(run.stdout, queries);
  if (!states) throw new Error(`no complete output: ${JSON.stringify(run.stdout.slice(0, 300))}`);
  return states;
}

/** The checksum a state carries (undefined for an absent path or none taken). */
const shaOf = (state: FileState | undefined) => (state && state.type !== 'absent' ? state.sha256 : undefined);

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

test('fileStatesScript reads every path with one stat and one sha256sum, whatever their names', (t) => {
  const dir = scratchDir(t);
  const names = [
    'plain',
    'with space',
    'new\nline',
    `single ' and double " quotes`,
    '-rf',
    '--',
    'back\\slash',
    'back\\slash and\nnewline',
    'arrow -> inside',
    '$(touch pwned) `id`',
  ];
  for (const name of names) writeFileSync(join(dir, name), `content of ${name}`);
  chmodSync(join(dir, 'plain'), 0o4750);
  const sub = join(dir, 'sub dir');
  mkdirSync(sub);
  chmodSync(sub, 0o2775);
  const link = join(dir, 'link -> arrow');
  symlinkSync("target -> with 'quotes'\nand a newline", link);
  const linkToFile = join(dir, 'link to plain');
  symlinkSync(join(dir, 'plain'), linkToFile);
  const fifo = join(dir, 'a fifo');
  execFileSync('mkfifo', [fifo]);
  const missing = join(dir, 'missing');
  const underFile = join(dir, 'plain', 'below a file');

  const queries: FileQuery[] = [
    ...names.map((name) => ({ path: join(dir, name), checksum: true })),
    { path: sub, checksum: true },
    { path: link, checksum: true },
    { path: linkToFile, checksum: true },
    // A FIFO is never read (it would block), a device neither.
    { path: fifo, checksum: true },
    { path: '/dev/zero', checksum: true },
    { path: missing, checksum: true },
    { path: underFile },
  ];
  const script = fileStatesScript(queries);
  t.is(script.match(/\bstat\b/g)?.length, 1);
  t.is(script.match(/\bsha256sum\b/g)?.length, 1);
  const shell = queries.reduce((rest, { path }) => rest.replaceAll(quote(path), ''), script);
  t.false(/\$\(|`/.test(shell), 'no command substitution (a process each)');
  t.deepEqual(shell.match(/\|[^|]*/g), ['| xargs -0 -r sha256sum --'], 'one pipe: the names to sha256sum');

  const states = statesOf(queries);
  const uid = process.getuid?.();
  for (const name of names) {
    t.like(states.get(join(dir, name)), { type: 'file', uid, sha256: sha(`content of ${name}`) }, name);
  }
  t.false(existsSync(join(dir, 'pwned')));
  t.like(states.get(join(dir, 'plain')), { mode: 0o4750 });
  t.like(states.get(sub), {
    type: 'dir',
    uid: statSync(sub).uid,
    user: userInfo().username,
    gid: statSync(sub).gid,
    mode: 0o2775,
  });
  t.like(states.get(link), { type: 'link', linkTarget: "target -> with 'quotes'\nand a newline" });
  t.is(shaOf(states.get(link)), undefined);
  t.like(states.get(linkToFile), { type: 'link', linkTarget: join(dir, 'plain') });
  t.is(shaOf(states.get(linkToFile)), undefined);
  t.like(states.get(fifo), { type: 'other' });
  t.is(shaOf(states.get(fifo)), undefined);
  t.like(states.get('/dev/zero'), { type: 'other' });
  t.deepEqual(states.get(missing), { type: 'absent' });
  t.deepEqual(states.get(underFile), { type: 'absent' });
});

test('fileStatesScript reads the checksum only of the paths that ask for it', (t) => {
  const dir = scratchDir(t);
  const file = join(dir, 'f');
  writeFileSync(file, 'x');
  const states = statesOf([{ path: file }]);
  t.like(states.get(file), { type: 'file' });
  t.is(shaOf(states.get(file)), undefined);
  // Asked by one task and not by another: the one map holds it.
  t.is(shaOf(statesOf([{ path: file }, { path: file, checksum: true }]).get(file)), sha('x'));
});

test('fileStatesScript splits thousands of long paths over several invocations, each under ARG_MAX', (t) => {
  const dir = scratchDir(t);
  const long = join(dir, 'd'.repeat(200));
  mkdirSync(long);
  const queries: FileQuery[] = Array.from({ length: 1500 }, (_, i) => {
    const path = join(long, `file number ${i} ${'x'.repeat(20)}`);
    if (i % 2 === 0) writeFileSync(path, String(i));
    return { path, checksum: true };
  });
  const script = fileStatesScript(queries);
  t.true((script.match(/\bstat\b/g)?.length ?? 0) > 1);
  const states = statesOf(queries);
  t.is(states.size, 1500);
  queries.forEach(({ path }, i) => {
    if (i % 2 === 0) t.like(states.get(path), { type: 'file', sha256: sha(String(i)) });
    else t.deepEqual(states.get(path), { type: 'absent' });
  });
});

test('parseFileStates trusts nothing of a cut-off output', (t) => {
  const queries = [{ path: '/a' }, { path: '/b' }];
  const record = '/a\0' + '81a4\0' + '0\0root\0' + '0\0root\0' + '/a\0';
  t.like(parseFileStates(`${record}\0`, queries)?.get('/a'), { type: 'file', mode: 0o644 });
  t.deepEqual(parseFileStates(`${record}\0`, queries)?.get('/b'), { type: 'absent' });
  // No end of the records: /b may exist; a record cut in the middle; a malformed record.
  t.is(parseFileStates(record, queries), undefined);
  t.is(parseFileStates(record.slice(0, 12), queries), undefined);
  t.is(parseFileStates('', queries), undefined);
  t.is(parseFileStates(`/a\0zz\0x\0root\0y\0root\0/a\0\0`, queries), undefined);
  // sha256sum's line for a name with a backslash or a newline starts with a backslash.
  const escaped = `\\${'a'.repeat(64)}  /x\\\\y\\nz\n`;
  const named = '/x\\y\nz';
  const line = `${named}\0` + '81a4\0' + '0\0root\0' + '0\0root\0' + `${named}\0`;
  t.like(parseFileStates(`${line}\0${escaped}`, [{ path: named, checksum: true }])?.get(named), {
    sha256: 'a'.repeat(64),
  });
});
