import { lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type ReplaceOptions, replace } from '../../../src/tasks/replace.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, planLocally, runCommands, scratchDir } from './local-host.js';

const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const STAT = 'verdandi-stat file 0 root 4 adm 640 - -';
const content = (text: string) => `verdandi-text-edit content ${b64(text)}`;

test('every match is replaced, with Python backreferences; the write keeps mode, owner and group', (t) => {
  const task = replace({
    path: '/etc/hosts',
    regexp: '^(\\d+\\.\\d+\\.\\d+\\.\\d+)\\s+old(\\.example)?$',
    replace: '\\1 new\\g<2>',
  });
  const before = '10.0.0.1 old.example\n# old\n10.0.0.2   old\n';
  t.deepEqual(task.plan(out(STAT, content(before))), {
    steps: [
      {
        kind: 'write',
        path: '/etc/hosts',
        content: '10.0.0.1 new.example\n# old\n10.0.0.2 new\n',
        mode: '0640',
        owner: 'root',
        group: 'adm',
      },
    ],
    reason: '2 replacements',
    diff: { path: '/etc/hosts', after: '10.0.0.1 new.example\n# old\n10.0.0.2 new\n' },
  });
});

test('converged: no match, or a result equal to the content, plans nothing', (t) => {
  t.deepEqual(replace({ path: '/etc/x', regexp: 'absent' }).plan(out(STAT, content('a\n'))), {
    steps: [],
    reason: undefined,
  });
  // The replacement matches the regexp again: rewriting it would give the same text.
  const same = replace({ path: '/etc/x', regexp: 'port=\\d+', replace: 'port=80' });
  t.deepEqual(same.plan(out(STAT, content('port=80\n'))).steps, []);
});

test('named groups in Python spelling, $ is literal, \\n is a newline, an unmatched group is empty', (t) => {
  const task = replace({
    path: '/etc/x',
    regexp: '(?P<key>\\w+)=(?P<value>\\w+)(;)?',
    replace: '\\g<value>$1\\n\\g<key>\\3',
  });
  t.is(task.plan(out(STAT, content('a=b\n'))).diff?.after, 'b$1\na\n');
  const backreference = replace({ path: '/etc/x', regexp: '(?P<w>o)(?P=w)', replace: '0' });
  t.is(backreference.plan(out(STAT, content('foo fo\n'))).diff?.after, 'f0 fo\n');
  const caseless = replace({ path: '/etc/x', regexp: '(?i)^yes$', replace: 'no' });
  t.is(caseless.plan(out(STAT, content('YES\nYes\nmaybe\n'))).diff?.after, 'no\nno\nmaybe\n');
});

test('after and before bound the edit as in Ansible; a bound that does not match is an error', (t) => {
  const before = 'x=1\n[main]\nx=2\n[other]\nx=3\n[other]\nx=4\n';
  const between = replace({
    path: '/etc/x',
    regexp: '^x=\\d',
    replace: 'x=0',
    after: '\\[main\\]',
    before: '\\[other\\]',
  });
  t.is(
    between.plan(out(STAT, content(before))).diff?.after,
    'x=1\n[main]\nx=0\n[other]\nx=3\n[other]\nx=4\n',
  );
  const afterOnly = replace({ path: '/etc/x', regexp: '^x=\\d', replace: 'x=0', after: '\\[main\\]' });
  t.is(
    afterOnly.plan(out(STAT, content(before))).diff?.after,
    'x=1\n[main]\nx=0\n[other]\nx=0\n[other]\nx=0\n',
  );
  // before alone: everything before its last match.
  const beforeOnly = replace({ path: '/etc/x', regexp: '^x=\\d', replace: 'x=0', before: '\\[other\\]' });
  t.is(
    beforeOnly.plan(out(STAT, content(before))).diff?.after,
    'x=0\n[main]\nx=0\n[other]\nx=0\n[other]\nx=4\n',
  );
  t.deepEqual(replace({ path: '/etc/x', regexp: 'x', after: 'nowhere' }).plan(out(STAT, content(before))), {
    steps: [],
    error: 'replace /etc/x: the after/before regexps do not match the file',
  });
});

test('owner, group and mode apply even when the content is converged', (t) => {
  const task = replace({ path: '/etc/x', regexp: 'z', mode: '0600', owner: 'root' });
  t.deepEqual(task.plan(out(STAT, content('a\n'))), {
    steps: [{ kind: 'run', command: 'chmod 00600 /etc/x' }],
    reason: 'mode 0640 → 0600',
  });
  const rewrite = replace({ path: '/etc/x', regexp: 'a', replace: 'b', mode: '0600' });
  t.like(rewrite.plan(out(STAT, content('a\n'))).steps[0], { kind: 'write', mode: '0600', owner: 'root' });
});

test('errors: a missing file, a directory, binary content, a missing owner, an unreadable probe', (t) => {
  const task = replace({ path: '/etc/x', regexp: 'a', owner: 'www' });
  t.deepEqual(task.plan(out('verdandi-account user 1', 'verdandi-text-edit absent')), {
    steps: [],
    error: 'replace /etc/x: /etc/x does not exist',
  });
  t.regex(
    task.plan(out('verdandi-account user 1', 'verdandi-text-edit not-a-file')).error ?? '',
    /is not a regular file/,
  );
  t.regex(
    task.plan(
      out(
        'verdandi-account user 1',
        STAT,
        `verdandi-text-edit content ${Buffer.from([0xff]).toString('base64')}`,
      ),
    ).error ?? '',
    /is not UTF-8 text/,
  );
  t.regex(
    task.plan(out('verdandi-account user 0', STAT, content('a'))).error ?? '',
    /user "www" does not exist/,
  );
  t.regex(task.plan({ stdout: 'noise\n', exitCode: 2 }).error ?? '', /could not read the state of \/etc\/x/);
});

test('options are checked when the task is built', (t) => {
  const build = (opts: ReplaceOptions) => () => replace(opts);
  t.throws(build({ path: '/etc/x', regexp: '' }), {
    instanceOf: UserError,
    message: /regexp must be a non-empty regexp/,
  });
  t.throws(build({ path: '/etc/x', regexp: '(' }), {
    instanceOf: UserError,
    message: /replace \/etc\/x: regexp is not a valid regexp: .*Unterminated group/,
  });
  t.throws(build({ path: '/etc/x', regexp: '(a)', replace: '\\2' }), {
    instanceOf: UserError,
    message: /the replacement refers to group 2, the regexp has 1/,
  });
  t.throws(build({ path: '/etc/x', regexp: 'a', replace: '\\g<nope>' }), {
    instanceOf: UserError,
    message: /no group of that name/,
  });
  t.throws(build({ path: '/etc/x', regexp: '(?x)a' }), {
    instanceOf: UserError,
    message: /inline flag \(\?x\)/,
  });
  t.throws(build({ path: '/etc/x', regexp: 'a', after: '[' }), {
    instanceOf: UserError,
    message: /after is not a valid regexp/,
  });
  t.throws(build({ path: 'etc/x', regexp: 'a' }), { instanceOf: UserError, message: /absolute path/ });
  t.throws(build({ path: '/etc/x', regexp: 'a', nope: 1 } as ReplaceOptions), {
    instanceOf: UserError,
    message: /unknown option nope/,
  });
});

test('locally: replaced, then converged; the content goes in a write, never on a command line', (t) => {
  const dir = scratchDir(t);
  const file = join(dir, 'app.conf');
  writeFileSync(file, 'listen 80;\nlisten 8080;\n', { mode: 0o640 });
  const task = replace({ path: file, regexp: '^listen (\\d+);$', replace: 'listen 127.0.0.1:\\1;' });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, '2 replacements');
  t.deepEqual(runCommands(first), []);
  t.is(readFileSync(file, 'utf8'), 'listen 127.0.0.1:80;\nlisten 127.0.0.1:8080;\n');
  t.is(statSync(file).mode & 0o777, 0o640);
  t.deepEqual(second.steps, []);
});

test('locally: a file behind a link is edited at its target and the link stays', (t) => {
  const dir = scratchDir(t);
  const target = join(dir, 'real.conf');
  const link = join(dir, 'link.conf');
  writeFileSync(target, 'a\n');
  symlinkSync(target, link);
  convergeLocally(replace({ path: link, regexp: 'a', replace: 'b' }));
  t.true(lstatSync(link).isSymbolicLink());
  t.is(readFileSync(target, 'utf8'), 'b\n');
});

test('locally: a missing file and a directory are errors', (t) => {
  const dir = scratchDir(t);
  t.regex(planLocally(replace({ path: join(dir, 'none'), regexp: 'a' })).error ?? '', /does not exist/);
  t.regex(planLocally(replace({ path: dir, regexp: 'a' })).error ?? '', /is not a regular file/);
});
