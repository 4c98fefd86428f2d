import { chmodSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  editLines,
  type LineInFileOptions,
  lineinfile,
  sedReplacement,
  splitLines,
} from '../../../src/tasks/lineinfile.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, planLocally, runProbe, scratchDir } from './local-host.js';

const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const STAT = 'verdandi-stat file 0 root 4 adm 640 - -';

test('the probe says ok: nothing to do, and no content was printed', (t) => {
  const task = lineinfile({
    path: '/etc/ssh/sshd_config',
    line: 'PermitRootLogin no',
    regexp: '^#?PermitRootLogin',
  });
  t.deepEqual(task.plan(out('verdandi-lineinfile ok')), { steps: [] });
});

test('a missing line is appended with a write that keeps mode, owner and group', (t) => {
  const task = lineinfile({ path: '/etc/x.conf', line: 'b=2' });
  t.deepEqual(task.plan(out(STAT, `verdandi-lineinfile change ${b64('a=1\n')}`)), {
    steps: [
      {
        kind: 'write',
        path: '/etc/x.conf',
        content: 'a=1\nb=2\n',
        mode: '0640',
        owner: 'root',
        group: 'adm',
      },
    ],
    reason: 'line is missing',
    diff: { path: '/etc/x.conf', after: 'a=1\nb=2\n' },
  });
});

test('the last line matching regexp (as grep numbered it) is replaced', (t) => {
  const task = lineinfile({ path: '/etc/x.conf', line: 'port=2', regexp: '^#?port=' });
  const before = 'port=0\nx\n#port=1\n';
  const plan = task.plan(
    out(STAT, 'verdandi-lineinfile-matches 1 3 ', `verdandi-lineinfile change ${b64(before)}`),
  );
  t.is(plan.reason, 'line 3 differs');
  t.is(plan.diff?.after, 'port=0\nx\nport=2\n');
});

test('with no regexp match, the line goes after the last insertAfter match', (t) => {
  const task = lineinfile({ path: '/etc/x.conf', line: 'new', regexp: '^new', insertAfter: '^\\[main\\]' });
  const before = '[main]\na\n[other]\nb\n';
  const plan = task.plan(
    out(
      STAT,
      'verdandi-lineinfile-matches ',
      'verdandi-lineinfile-after 1',
      `verdandi-lineinfile change ${b64(before)}`,
    ),
  );
  t.is(plan.diff?.after, '[main]\nnew\na\n[other]\nb\n');
});

test('insertAfter without a match appends at the end', (t) => {
  const task = lineinfile({ path: '/etc/x.conf', line: 'new', insertAfter: '^\\[main\\]' });
  const plan = task.plan(
    out(STAT, 'verdandi-lineinfile-after ', `verdandi-lineinfile change ${b64('a\nb')}`),
  );
  t.is(plan.diff?.after, 'a\nb\nnew\n');
});

test('state absent removes every line matching regexp, or equal to line', (t) => {
  const byRegexp = lineinfile({ path: '/etc/x', regexp: '^deb cdrom', state: 'absent' });
  const before = 'deb cdrom:a\ndeb http://x\ndeb cdrom:b\n';
  const plan = byRegexp.plan(
    out(STAT, 'verdandi-lineinfile-matches 1 3 ', `verdandi-lineinfile change ${b64(before)}`),
  );
  t.is(plan.reason, 'removes 2 lines');
  t.is(plan.diff?.after, 'deb http://x\n');

  const byLine = lineinfile({ path: '/etc/x', line: 'b', state: 'absent' });
  t.is(byLine.plan(out(STAT, `verdandi-lineinfile change ${b64('a\nb\nc\nb\n')}`)).diff?.after, 'a\nc\n');
});

test('a missing file: an error without create, a new 0644 file (its directories made) with it, nothing for state absent', (t) => {
  t.deepEqual(lineinfile({ path: '/etc/x', line: 'a' }).plan(out('verdandi-lineinfile absent')), {
    steps: [],
    error: 'lineinfile /etc/x: /etc/x does not exist (set create: true to create it)',
  });
  t.deepEqual(
    lineinfile({ path: '/etc/x', line: 'a', create: true }).plan(out('verdandi-lineinfile absent')),
    {
      steps: [
        { kind: 'run', command: 'mkdir -p /etc', description: 'create /etc' },
        { kind: 'write', path: '/etc/x', content: 'a\n', mode: '0644' },
      ],
      reason: 'file is missing',
      diff: { path: '/etc/x', after: 'a\n' },
    },
  );
  t.deepEqual(
    lineinfile({ path: '/etc/x', line: 'a', state: 'absent' }).plan(out('verdandi-lineinfile absent')),
    {
      steps: [],
    },
  );
});

test('a file reached through a link is written at its resolved path', (t) => {
  const task = lineinfile({ path: '/etc/resolv.conf', line: 'nameserver 10.0.0.1' });
  const plan = task.plan(
    out(`verdandi-lineinfile-real ${b64('/run/resolv.conf')}`, STAT, `verdandi-lineinfile change ${b64('')}`),
  );
  t.like(plan.steps[0], { kind: 'write', path: '/run/resolv.conf', content: 'nameserver 10.0.0.1\n' });
});

test('errors: a bad regexp (grep’s words), a directory, binary content, an unreadable probe', (t) => {
  const task = lineinfile({ path: '/etc/x', line: 'a', regexp: '[' });
  t.deepEqual(task.plan(out(`verdandi-lineinfile bad-regexp regexp ${b64('grep: Unmatched [')}`)), {
    steps: [],
    error: 'lineinfile /etc/x: regexp is not a valid extended regexp: grep: Unmatched [',
  });
  t.regex(task.plan(out('verdandi-lineinfile not-a-file')).error ?? '', /is not a regular file/);
  t.regex(
    task.plan(out(STAT, `verdandi-lineinfile change ${Buffer.from([0xff, 0xfe]).toString('base64')}`))
      .error ?? '',
    /is not UTF-8 text/,
  );
  t.regex(task.plan({ stdout: 'noise\n', exitCode: 2 }).error ?? '', /could not read the state of \/etc\/x/);
});

test('options are checked when the task is built', (t) => {
  const build = (opts: LineInFileOptions) => () => lineinfile(opts);
  t.throws(build({ path: '/etc/x' }), { instanceOf: UserError, message: /line is required/ });
  t.notThrows(build({ path: '/etc/x', regexp: '^a', state: 'absent' }));
  t.throws(build({ path: '/etc/x', line: 'a\nb' }), { instanceOf: UserError, message: /single line/ });
  t.throws(build({ path: '/etc/x', line: 'a', regexp: '' }), {
    instanceOf: UserError,
    message: /regexp must be/,
  });
  t.throws(build({ path: '/etc/x', line: 'a', state: 'gone' as 'absent' }), { instanceOf: UserError });
});

test('splitLines numbers lines the way grep does', (t) => {
  t.deepEqual(splitLines(''), []);
  t.deepEqual(splitLines('\n'), ['']);
  t.deepEqual(splitLines('a\nb'), ['a', 'b']);
  t.deepEqual(splitLines('a\nb\n'), ['a', 'b']);
});

test('editLines leaves lines alone when the wanted line is there', (t) => {
  const spec = { path: '/x', line: 'b', state: 'present' as const };
  t.deepEqual(editLines(spec, ['a', 'b'], [], undefined), { lines: ['a', 'b'] });
  t.deepEqual(editLines({ ...spec, regexp: '^b' }, ['a', 'b'], [2], undefined), { lines: ['a', 'b'] });
});

// --- Against real files, with the real probe (dash, grep, base64, stat) ---

const TRICKY_LINE = `export GREETING="it's $HOME \\\\ \`id\`" # [x]*`;

test('locally: append, then converged; the probe prints no content when the line is there', (t) => {
  const path = join(scratchDir(t), "my 'app'.conf");
  writeFileSync(path, 'first\nlast without newline');
  chmodSync(path, 0o640);
  const task = lineinfile({ path, line: TRICKY_LINE });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, 'line is missing');
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), `first\nlast without newline\n${TRICKY_LINE}\n`);
  t.is(statSync(path).mode & 0o7777, 0o640);
  const stdout = runProbe(task).stdout;
  t.is(stdout.trim(), 'verdandi-lineinfile ok');
});

test('locally: a regexp with a POSIX class replaces the last match only, as grep sees it', (t) => {
  const path = join(scratchDir(t), 'sshd_config');
  writeFileSync(path, '#PermitRootLogin yes\nPort 22\n  PermitRootLogin   yes\nX11Forwarding no\n');
  const task = lineinfile({
    path,
    line: 'PermitRootLogin no',
    regexp: '^[[:space:]]*#?PermitRootLogin[[:space:]]',
  });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, 'line 3 differs');
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), '#PermitRootLogin yes\nPort 22\nPermitRootLogin no\nX11Forwarding no\n');
});

test('locally: insertAfter puts the line after its last match', (t) => {
  const path = join(scratchDir(t), 'php.ini');
  writeFileSync(path, '[PHP]\na=1\n[Session]\nb=2\n');
  const task = lineinfile({
    path,
    line: 'session.gc=1',
    regexp: '^session\\.gc=',
    insertAfter: '^\\[Session\\]$',
  });
  const { second } = convergeLocally(task);
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), '[PHP]\na=1\n[Session]\nsession.gc=1\nb=2\n');
});

test('locally: state absent removes matching lines, then is converged', (t) => {
  const path = join(scratchDir(t), 'sources.list');
  writeFileSync(
    path,
    'deb cdrom:[Debian]/ bookworm main\ndeb http://deb.example bookworm main\ndeb cdrom:x\n',
  );
  const { first, second } = convergeLocally(lineinfile({ path, regexp: '^deb cdrom:', state: 'absent' }));
  t.is(first.reason, 'removes 2 lines');
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), 'deb http://deb.example bookworm main\n');
  const byLine = convergeLocally(
    lineinfile({ path, line: 'deb http://deb.example bookworm main', state: 'absent' }),
  );
  t.deepEqual(byLine.second.steps, []);
  t.is(readFileSync(path, 'utf8'), '');
});

test('locally: create makes a missing file; without create it is an error', (t) => {
  const dir = scratchDir(t);
  const path = join(dir, 'new file');
  t.regex(planLocally(lineinfile({ path, line: 'a' })).error ?? '', /does not exist \(set create: true/);
  const { second } = convergeLocally(lineinfile({ path, line: 'a', create: true }));
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), 'a\n');
});

test('locally: a file behind a link is edited and the link stays a link', (t) => {
  const dir = scratchDir(t);
  mkdirSync(join(dir, 'real dir'));
  const real = join(dir, 'real dir', 'hosts');
  writeFileSync(real, '127.0.0.1 localhost\n');
  const path = join(dir, 'hosts link');
  symlinkSync(real, path);
  const { first, second } = convergeLocally(lineinfile({ path, line: '10.0.0.2 db' }));
  t.like(first.steps[0], { kind: 'write', path: real });
  t.deepEqual(second.steps, []);
  t.true(lstatSync(path).isSymbolicLink());
  t.is(readFileSync(real, 'utf8'), '127.0.0.1 localhost\n10.0.0.2 db\n');
});

test('locally: an invalid regexp is reported with grep’s message', (t) => {
  const path = join(scratchDir(t), 'f');
  writeFileSync(path, 'x\n');
  t.regex(
    planLocally(lineinfile({ path, line: 'a', regexp: 'a[' })).error ?? '',
    /^lineinfile .*: regexp is not a valid extended regexp: grep: \S/,
  );
});

test('locally: a directory at the path is an error', (t) => {
  const dir = scratchDir(t);
  t.regex(planLocally(lineinfile({ path: dir, line: 'a' })).error ?? '', /is not a regular file/);
});

// --- insertBefore, backrefs, owner/group/mode, validate ---

test('insertBefore: before the last line matching it; BOF: at the top; no match: at the end', (t) => {
  const before = '[a]\nx\n[b]\ny\n';
  const regexpTask = lineinfile({ path: '/etc/x', line: 'new', insertBefore: '^\\[' });
  const probed = out(STAT, 'verdandi-lineinfile-before 3', `verdandi-lineinfile change ${b64(before)}`);
  t.is(regexpTask.plan(probed).diff?.after, '[a]\nx\nnew\n[b]\ny\n');
  const top = lineinfile({ path: '/etc/x', line: 'new', insertBefore: 'BOF' });
  t.is(top.plan(out(STAT, `verdandi-lineinfile change ${b64(before)}`)).diff?.after, `new\n${before}`);
  const none = out(STAT, 'verdandi-lineinfile-before ', `verdandi-lineinfile change ${b64(before)}`);
  t.is(regexpTask.plan(none).diff?.after, `${before}new\n`);
});

test('backrefs: the expansion the host printed replaces the last match', (t) => {
  const task = lineinfile({ path: '/etc/x', regexp: '^port=([0-9]+)$', line: 'Port \\1', backrefs: true });
  const plan = task.plan(
    out(
      STAT,
      'verdandi-lineinfile-matches 2 ',
      `verdandi-lineinfile-expanded ${b64('Port 22')}`,
      `verdandi-lineinfile change ${b64('a\nport=22\n')}`,
    ),
  );
  t.is(plan.reason, 'line 2 differs');
  t.is(plan.diff?.after, 'a\nPort 22\n');
  // No match: the probe says ok, and a missing file stays missing even with create.
  t.deepEqual(task.plan(out('verdandi-lineinfile ok')), { steps: [] });
  const create = lineinfile({ path: '/etc/x', regexp: '^a(.)', line: '\\1', backrefs: true, create: true });
  t.deepEqual(create.plan(out('verdandi-lineinfile absent')), { steps: [] });
});

test('sedReplacement: sed groups, Python’s \\g<N>, & escaped; other escapes refused', (t) => {
  t.deepEqual(sedReplacement('a \\1 & \\g<2> \\g<0> \\\\'), { replacement: 'a \\1 \\& \\2 & \\\\' });
  t.regex((sedReplacement('\\n') as { problem: string }).problem, /may only use the escapes/);
  t.regex((sedReplacement('\\g<12>') as { problem: string }).problem, /at most 9 groups/);
  t.regex((sedReplacement('x\\') as { problem: string }).problem, /\(end of line\)/);
});

test('owner, group, mode: chown/chmod when only they differ, set by the write otherwise', (t) => {
  const task = lineinfile({ path: '/etc/x', line: 'a', owner: 'www-data', group: 'www-data', mode: '0600' });
  t.deepEqual(task.plan(out(STAT, 'verdandi-lineinfile ok')), {
    steps: [
      { kind: 'run', command: 'chown www-data:www-data /etc/x' },
      { kind: 'run', command: 'chmod 00600 /etc/x' },
    ],
    reason: 'owner root → www-data, group adm → www-data, mode 0640 → 0600',
  });
  const same = 'verdandi-stat file 33 www-data 33 www-data 600 - -';
  t.deepEqual(task.plan(out(same, 'verdandi-lineinfile ok')), { steps: [] });
  const write = task.plan(out(STAT, `verdandi-lineinfile change ${b64('b\n')}`));
  t.deepEqual(write.steps, [
    { kind: 'write', path: '/etc/x', content: 'b\na\n', mode: '0600', owner: 'www-data', group: 'www-data' },
  ]);
  t.is(write.reason, 'line is missing, owner root → www-data, group adm → www-data, mode 0640 → 0600');
  t.regex(
    task.plan(out('verdandi-account user 0', 'verdandi-lineinfile ok')).error ?? '',
    /user "www-data" does not exist on the host/,
  );
  const created = lineinfile({
    path: '/etc/x',
    line: 'a',
    create: true,
    mode: '0600',
    validate: 'test -s %s',
  });
  t.deepEqual(created.plan(out('verdandi-lineinfile absent')).steps, [
    { kind: 'run', command: 'mkdir -p /etc', description: 'create /etc' },
    { kind: 'write', path: '/etc/x', content: 'a\n', mode: '0600', validate: 'test -s %s' },
  ]);
});

test('validate goes with the write', (t) => {
  const task = lineinfile({ path: '/etc/x', line: 'a', validate: 'grep -q a %s' });
  t.like(task.plan(out(STAT, `verdandi-lineinfile change ${b64('')}`)).steps[0], {
    kind: 'write',
    validate: 'grep -q a %s',
  });
});

test('the new options are checked when the task is built', (t) => {
  const build = (opts: LineInFileOptions) => () => lineinfile(opts);
  t.throws(build({ path: '/x', line: 'a', insertAfter: 'a', insertBefore: 'b' }), {
    message: /give insertAfter or insertBefore, not both/,
  });
  t.throws(build({ path: '/x', line: 'a', backrefs: true }), { message: /backrefs needs a regexp/ });
  t.throws(build({ path: '/x', regexp: 'a', backrefs: true, state: 'absent' }), {
    message: /state present only/,
  });
  t.throws(build({ path: '/x', line: 'a', regexp: 'a', backrefs: true, insertBefore: 'BOF' }), {
    message: /cannot go with it/,
  });
  t.throws(build({ path: '/x', line: '\\t', regexp: 'a', backrefs: true }), { message: /may only use/ });
  t.throws(build({ path: '/x', line: 'a', validate: 'true' }), {
    message: /validate must be a command containing %s/,
  });
  t.throws(build({ path: '/x', line: 'a', mode: 0o644 as unknown as string }), { message: /octal string/ });
  t.throws(build({ path: '/x', line: 'a', backrefs: 'yes' as unknown as boolean }), {
    message: /backrefs must be true or false/,
  });
});

test('locally: backrefs fills the groups as grep/sed see them; no match leaves the file alone', (t) => {
  const path = join(scratchDir(t), 'sshd_config');
  writeFileSync(path, 'Port 22\n#ListenAddress 0.0.0.0 # a & b\nX 1\n');
  const task = lineinfile({
    path,
    regexp: '^#?ListenAddress[[:space:]]+([0-9.]+)',
    line: 'ListenAddress \\g<1> & \\\\',
    backrefs: true,
  });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, 'line 2 differs');
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), 'Port 22\nListenAddress 0.0.0.0 & \\\nX 1\n');
  const noMatch = lineinfile({ path, regexp: '^Nothing (.*)', line: 'Y \\1', backrefs: true });
  t.deepEqual(planLocally(noMatch), { steps: [] });
  const tooMany = lineinfile({ path, regexp: '^Port (.*)', line: 'Port \\2', backrefs: true });
  t.regex(planLocally(tooMany).error ?? '', /line cannot be filled from regexp's groups: sed: .*reference/);
});

test('locally: insertBefore a regexp and BOF, then converged', (t) => {
  const path = join(scratchDir(t), 'hosts');
  writeFileSync(path, 'a\n# end\n');
  const { second } = convergeLocally(lineinfile({ path, line: 'b', insertBefore: '^# end' }));
  t.deepEqual(second.steps, []);
  const top = convergeLocally(lineinfile({ path, line: '# top', insertBefore: 'BOF' }));
  t.deepEqual(top.second.steps, []);
  t.is(readFileSync(path, 'utf8'), '# top\na\nb\n# end\n');
});

test('locally: mode is applied on a converged line, and validate refuses bad content', (t) => {
  const path = join(scratchDir(t), 'conf');
  writeFileSync(path, 'a\n');
  chmodSync(path, 0o644);
  const { first, second } = convergeLocally(lineinfile({ path, line: 'a', mode: '0600' }));
  t.is(first.reason, 'mode 0644 → 0600');
  t.deepEqual(second.steps, []);
  t.is(statSync(path).mode & 0o7777, 0o600);
  const refused = lineinfile({ path, line: 'bad', validate: '! grep -q bad %s' });
  t.throws(() => convergeLocally(refused), { message: /failed/ });
  t.is(readFileSync(path, 'utf8'), 'a\n');
});
