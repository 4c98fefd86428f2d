import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import type { Plan } from '../../../src/engine/types.js';
import { copy } from '../../../src/tasks/copy.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, isRoot, planLocally, probed, runCommands, scratchDir } from './local-host.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const asRoot = isRoot ? test : test.skip;

const CONTENT = "secret_key = 's3cr3t $HOME `id`'\n";
const noContentOnCommandLines = (t: { false: (v: boolean) => void }, plan: Plan) => {
  for (const command of runCommands(plan)) t.false(command.includes('s3cr3t'));
};

test('a missing file is written with mode 0644 by default, and the diff carries the content', (t) => {
  const task = copy({ path: '/etc/app.conf', content: CONTENT });
  t.is(task.type, 'copy');
  t.is(task.name, 'copy /etc/app.conf');
  // Its file's state and checksum are read with every other task's: without owner or group, the task
  // has no probe of its own (no process on the host).
  t.deepEqual(task.files, [{ path: '/etc/app.conf', checksum: true }]);
  t.is(task.probe, '');
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')), {
    steps: [{ kind: 'write', path: '/etc/app.conf', content: CONTENT, mode: '0644' }],
    reason: 'file is missing',
    diff: { path: '/etc/app.conf', after: CONTENT },
  });
});

test('the same content with the same attributes needs nothing', (t) => {
  const task = copy({ path: '/etc/app.conf', content: CONTENT, mode: '640', owner: 'root' });
  const plan = task.plan(
    probed(task, `verdandi-stat file 0 root 0 root 640 ${sha(CONTENT)} -`, 'verdandi-account user 1'),
  );
  t.deepEqual(plan.steps, []);
  t.is(plan.diff, undefined);
});

test('the same content with another mode and group changes attributes only: content is not sent', (t) => {
  const task = copy({ path: '/etc/app.conf', content: CONTENT, mode: '0640', group: 'www-data' });
  const plan = task.plan(
    probed(task, `verdandi-stat file 0 root 0 root 644 ${sha(CONTENT)} -`, 'verdandi-account group 1'),
  );
  t.deepEqual(plan, {
    steps: [
      { kind: 'run', command: 'chown :www-data /etc/app.conf' },
      { kind: 'run', command: 'chmod 00640 /etc/app.conf' },
    ],
    reason: 'group root → www-data, mode 0644 → 0640',
  });
  noContentOnCommandLines(t, plan);
});

test('different content is one write step that keeps the attributes not asked for', (t) => {
  const task = copy({
    path: '/etc/app.conf',
    content: CONTENT,
    owner: 'www-data',
    validate: 'app --check %s',
  });
  const plan = task.plan(
    probed(task, `verdandi-stat file 33 www-data 4 adm 600 ${sha('old\n')} -`, 'verdandi-account user 1'),
  );
  t.deepEqual(plan, {
    steps: [
      {
        kind: 'write',
        path: '/etc/app.conf',
        content: CONTENT,
        mode: '0600',
        owner: 'www-data',
        group: 'adm',
        validate: 'app --check %s',
      },
    ],
    reason: 'content differs',
    diff: { path: '/etc/app.conf', after: CONTENT },
  });
  noContentOnCommandLines(t, plan);
});

test('different content and other attributes: the write sets them and the reason lists them', (t) => {
  const task = copy({ path: '/etc/app.conf', content: CONTENT, mode: '0640' });
  const plan = task.plan(probed(task, `verdandi-stat file 0 root 0 root 644 ${sha('old')} -`));
  t.is(plan.reason, 'content differs, mode 0644 → 0640');
  t.like(plan.steps[0], { kind: 'write', mode: '0640', owner: 'root', group: 'root' });
});

test('a file owned by an unnamed uid keeps it numerically when rewritten', (t) => {
  const task = copy({ path: '/x', content: 'a' });
  const plan = task.plan(probed(task, `verdandi-stat file 1234 UNKNOWN 1234 UNKNOWN 644 ${sha('b')} -`));
  t.like(plan.steps[0], { owner: '1234', group: '1234' });
});

test('a symbolic link is replaced by the file; a directory is refused', (t) => {
  const task = copy({ path: '/etc/resolv.conf', content: 'nameserver 10.0.0.1\n' });
  const link = `verdandi-stat link 0 root 0 root 777 - ${Buffer.from('/run/resolv.conf').toString('base64')}`;
  const plan = task.plan(probed(task, link));
  t.is(plan.reason, '/etc/resolv.conf is a symbolic link (→ /run/resolv.conf), replaced by a file');
  t.like(plan.steps[0], { kind: 'write', mode: '0644' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat dir 0 root 0 root 755 - -')), {
    steps: [],
    error:
      'copy /etc/resolv.conf: /etc/resolv.conf is a directory; refusing to replace it with a file (remove it with absent() or change the path)',
  });
});

test('force false writes a missing file only: an existing file, link or directory is left as it is', (t) => {
  const task = copy({ path: '/etc/app.conf', content: CONTENT, mode: '0600', force: false });
  t.like(task.plan(probed(task, 'verdandi-stat absent')), {
    steps: [{ kind: 'write', path: '/etc/app.conf', content: CONTENT, mode: '0600' }],
    reason: 'file is missing',
  });
  for (const state of [
    `verdandi-stat file 0 root 0 root 644 ${sha('other\n')} -`,
    `verdandi-stat link 0 root 0 root 777 - ${Buffer.from('/x').toString('base64')}`,
    'verdandi-stat dir 0 root 0 root 755 - -',
  ]) {
    t.deepEqual(task.plan(probed(task, state)), { steps: [] }, state);
  }
});

test('backup true asks the write replacing a file for a copy of the old one; a new file needs none', (t) => {
  const task = copy({ path: '/etc/app.conf', content: CONTENT, backup: true });
  t.like(task.plan(probed(task, `verdandi-stat file 0 root 0 root 640 ${sha('old\n')} -`)), {
    steps: [{ kind: 'write', path: '/etc/app.conf', mode: '0640', backup: true }],
    reason: 'content differs',
  });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')).steps, [
    { kind: 'write', path: '/etc/app.conf', content: CONTENT, mode: '0644' },
  ]);
  t.deepEqual(task.plan(probed(task, `verdandi-stat file 0 root 0 root 644 ${sha(CONTENT)} -`)).steps, []);
});

test('force and backup must be booleans', (t) => {
  t.throws(() => copy({ path: '/etc/x', content: 'a', force: 'no' as unknown as boolean }), {
    instanceOf: UserError,
    message: /force must be true or false, got "no"/,
  });
  t.throws(() => copy({ path: '/etc/x', content: 'a', backup: 1 as unknown as boolean }), {
    instanceOf: UserError,
    message: /backup must be true or false, got 1/,
  });
});

test('an unknown owner is an error, whatever the content', (t) => {
  const task = copy({ path: '/etc/x', content: 'x', owner: 'app' });
  t.regex(
    task.plan(probed(task, 'verdandi-stat absent', 'verdandi-account user 0')).error ?? '',
    /^copy \/etc\/x: user "app" does not exist/,
  );
});

test('src is read from an absolute path or a file URL when the task is built', (t) => {
  const dir = scratchDir(t);
  const src = join(dir, 'source file.conf');
  writeFileSync(src, 'from a file\n');
  const byPath = copy({ path: '/etc/x', src });
  const byUrl = copy({ path: '/etc/x', src: pathToFileURL(src) });
  for (const task of [byPath, byUrl]) {
    t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')).diff, {
      path: '/etc/x',
      after: 'from a file\n',
    });
  }
});

test('bad sources and options are UserErrors', (t) => {
  const dir = scratchDir(t);
  t.throws(() => copy({ path: '/etc/x' }), {
    instanceOf: UserError,
    message: /exactly one of content or src/,
  });
  t.throws(() => copy({ path: '/etc/x', content: 'a', src: '/a' }), { instanceOf: UserError });
  const relative = t.throws(() => copy({ path: '/etc/x', src: 'files/x' }), { instanceOf: UserError });
  t.regex(relative?.message ?? '', /src must be an absolute path or a file URL, got "files\/x"/);
  t.regex(relative?.hint ?? '', /import\.meta\.url/);
  t.throws(() => copy({ path: '/etc/x', src: join(dir, 'missing') }), {
    instanceOf: UserError,
    message: /cannot read .*missing: no such file/,
  });
  const binary = join(dir, 'binary');
  writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00, 0x80]));
  t.throws(() => copy({ path: '/etc/x', src: binary }), {
    instanceOf: UserError,
    message: /is not UTF-8 text/,
  });
  t.throws(() => copy({ path: '/etc/x', content: 'a', validate: 'nginx -t' }), {
    instanceOf: UserError,
    message: /validate must be a command containing %s/,
  });
});

test('locally: content is written, then the second probe sees the same sha256', (t) => {
  const path = join(scratchDir(t), "app 'prod'.conf");
  const { first, second } = convergeLocally(
    copy({ path, content: CONTENT, mode: '0600', validate: 'grep -q secret_key %s' }),
  );
  t.is(first.reason, 'file is missing');
  t.deepEqual(second.steps, []);
  t.is(readFileSync(path, 'utf8'), CONTENT);
  t.is(statSync(path).mode & 0o7777, 0o600);
});

test('locally: a changed file is rewritten keeping its mode; a mode change alone sends no content', (t) => {
  const path = join(scratchDir(t), 'app.conf');
  writeFileSync(path, 'old\n');
  chmodSync(path, 0o640);
  const rewrite = convergeLocally(copy({ path, content: CONTENT }));
  t.is(rewrite.first.reason, 'content differs');
  t.deepEqual(rewrite.second.steps, []);
  t.is(statSync(path).mode & 0o7777, 0o640);

  const chmodOnly = convergeLocally(copy({ path, content: CONTENT, mode: '0644' }));
  t.deepEqual(
    chmodOnly.first.steps.map((s) => s.kind),
    ['run'],
  );
  noContentOnCommandLines(t, chmodOnly.first);
  t.deepEqual(chmodOnly.second.steps, []);
});

test('locally: a link at the path is replaced by a file and its target is left alone', (t) => {
  const dir = scratchDir(t);
  writeFileSync(join(dir, 'target'), 'target content');
  const path = join(dir, 'link');
  symlinkSync(join(dir, 'target'), path);
  const { second } = convergeLocally(copy({ path, content: 'new' }));
  t.deepEqual(second.steps, []);
  t.is(readFileSync(join(dir, 'target'), 'utf8'), 'target content');
  t.is(readFileSync(path, 'utf8'), 'new');
});

asRoot('locally: owner and group are set with the write', (t) => {
  const path = join(scratchDir(t), 'owned.conf');
  const { second } = convergeLocally(copy({ path, content: 'x', owner: 'nobody', group: 'nogroup' }));
  t.deepEqual(second.steps, []);
  t.is(statSync(path).uid, 65534);
  t.is(statSync(path).gid, 65534);
});

test('locally: a missing group is reported by the real probe', (t) => {
  const path = join(scratchDir(t), 'x');
  t.regex(
    planLocally(copy({ path, content: 'x', group: 'verdandi-no-such-group' })).error ?? '',
    /group "verdandi-no-such-group" does not exist on the host/,
  );
});

test('a sensitive copy still gives its diff: hiding it is the engine’s job', (t) => {
  const task = copy({ path: '/etc/app.env', content: 'TOKEN=abcd\n', mode: '0600', sensitive: true });
  t.true(task.sensitive);
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')).diff, {
    path: '/etc/app.env',
    after: 'TOKEN=abcd\n',
  });
});
