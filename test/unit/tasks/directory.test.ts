import { chmodSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { directory, parentMode } from '../../../src/tasks/directory.js';
import { convergeLocally, isRoot, planLocally, probed, scratchDir } from './local-host.js';

const asRoot = isRoot ? test : test.skip;

test('a missing directory: its missing parents made with its owner and its mode without group/other write', (t) => {
  const task = directory({ path: "/srv/it's/app/", owner: 'www-data', mode: '2775' });
  t.is(task.name, "directory /srv/it's/app");
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent', 'verdandi-account user 1')), {
    steps: [
      {
        kind: 'run',
        command: `for d in /srv '/srv/it'\\''s'; do if [ ! -e "$d" ] && [ ! -L "$d" ]; then mkdir "$d" && chown www-data "$d" && chmod 02755 "$d" || exit 1; fi; done`,
        description: "create the missing parents of /srv/it's/app (mode 2755)",
      },
      { kind: 'run', command: `mkdir -p '/srv/it'\\''s/app'` },
      { kind: 'run', command: `chown www-data '/srv/it'\\''s/app'` },
      { kind: 'run', command: `chmod 02775 '/srv/it'\\''s/app'` },
    ],
    reason: 'directory is missing',
  });
});

test('without owner, group or mode, parents are mkdir -p (root, 0755)', (t) => {
  const task = directory({ path: '/srv/a/b' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')).steps, [
    { kind: 'run', command: 'mkdir -p /srv/a/b' },
  ]);
  t.is(parentMode('0777'), '0755');
  t.is(parentMode('1777'), '1755');
  t.is(parentMode('0700'), '0700');
});

asRoot(
  'locally: missing parents get the owner and the mode without group/other write; existing ones are kept',
  (t) => {
    const top = scratchDir(t);
    chmodSync(top, 0o711);
    const path = join(top, 'p', 'q', 'leaf');
    const { first, second } = convergeLocally(
      directory({ path, owner: 'nobody', group: 'nogroup', mode: '0775' }),
    );
    t.is(first.reason, 'directory is missing');
    t.deepEqual(second.steps, []);
    for (const dir of [join(top, 'p'), join(top, 'p', 'q')]) {
      const stat = statSync(dir);
      t.is(stat.mode & 0o7777, 0o755, dir);
      t.is(stat.uid, 65534, dir);
    }
    t.is(statSync(path).mode & 0o7777, 0o775);
    t.is(statSync(top).mode & 0o7777, 0o711, 'an existing parent is not changed');
    t.is(statSync(top).uid, 0);
  },
);

test('a directory with the same mode written differently needs nothing', (t) => {
  const task = directory({ path: '/srv/app', mode: '755' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat dir 0 root 0 root 755 - -')).steps, []);
});

test('a setgid bit that is not wanted is cleared (chmod with the extra leading zero)', (t) => {
  const task = directory({ path: '/srv/app', mode: '0755' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat dir 0 root 0 root 2755 - -')), {
    steps: [{ kind: 'run', command: 'chmod 00755 /srv/app' }],
    reason: 'mode 2755 → 0755',
  });
});

test('a file or a link where the directory should be is an error', (t) => {
  const task = directory({ path: '/srv/app' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat file 0 root 0 root 644 - -')), {
    steps: [],
    error: 'directory /srv/app: /srv/app is a file, not a directory; remove it (absent()) or change the path',
  });
  const target = Buffer.from('/data/app').toString('base64');
  t.regex(
    task.plan(probed(task, `verdandi-stat link 0 root 0 root 777 - ${target}`)).error ?? '',
    /is a symbolic link \(→ \/data\/app\), not a directory/,
  );
});

test('an unknown group is an error', (t) => {
  const task = directory({ path: '/srv/app', group: 'deployers' });
  t.regex(
    task.plan(probed(task, 'verdandi-stat absent', 'verdandi-account group 0')).error ?? '',
    /group "deployers" does not exist/,
  );
});

test('without recurse, attributes apply to the directory only', (t) => {
  const task = directory({ path: '/srv/app', owner: 'www-data' });
  t.notRegex(task.probe, /find /);
  t.deepEqual(
    task.plan(probed(task, 'verdandi-stat dir 0 root 0 root 755 - -', 'verdandi-account user 1')).steps,
    [{ kind: 'run', command: 'chown www-data /srv/app' }],
  );
});

test('with recurse, drift below the top gives chown -R and a chmod of the directories', (t) => {
  const task = directory({
    path: '/srv/app',
    owner: 'www-data',
    group: 'www-data',
    mode: '0750',
    recurse: true,
  });
  t.regex(task.probe, /find \/srv\/app/);
  const top = 'verdandi-stat dir 33 www-data 33 www-data 750 - -';
  t.deepEqual(task.plan(probed(task, top, 'verdandi-account user 1', 'verdandi-account group 1')).steps, []);
  t.deepEqual(task.plan(probed(task, top, 'verdandi-drift owner', 'verdandi-drift mode')), {
    steps: [
      { kind: 'run', command: 'chown -R www-data:www-data /srv/app' },
      { kind: 'run', command: 'find /srv/app -type d ! -perm 0750 -exec chmod 00750 {} +' },
    ],
    reason: 'owner/group differs below, mode of directories below differs',
  });
});

test('locally: a missing nested directory is made and converges', (t) => {
  const path = join(scratchDir(t), 'a b', "c'd");
  const { first, second } = convergeLocally(directory({ path, mode: '0700' }));
  t.is(first.reason, 'directory is missing');
  t.deepEqual(second.steps, []);
  t.is(statSync(path).mode & 0o7777, 0o700);
});

test('locally: a real setgid bit is cleared when the mode says so', (t) => {
  const path = join(scratchDir(t), 'shared');
  mkdirSync(path);
  chmodSync(path, 0o2755);
  t.is(statSync(path).mode & 0o7777, 0o2755);
  const { first, second } = convergeLocally(directory({ path, mode: '0755' }));
  t.is(first.reason, 'mode 2755 → 0755');
  t.deepEqual(second.steps, []);
  t.is(statSync(path).mode & 0o7777, 0o755);
});

asRoot('locally: recurse sets owner on the whole tree and the mode on directories only', (t) => {
  const path = join(scratchDir(t), 'tree');
  mkdirSync(join(path, 'sub dir'), { recursive: true });
  chmodSync(join(path, 'sub dir'), 0o700);
  writeFileSync(join(path, 'sub dir', 'file'), 'x', { mode: 0o600 });
  symlinkSync('/etc/passwd', join(path, 'link'));
  const task = directory({ path, owner: 'nobody', group: 'nogroup', mode: '0750', recurse: true });
  const { first, second } = convergeLocally(task);
  t.true(first.steps.length > 0);
  t.deepEqual(second.steps, []);
  t.is(statSync(join(path, 'sub dir')).mode & 0o7777, 0o750);
  t.is(statSync(join(path, 'sub dir', 'file')).mode & 0o7777, 0o600, 'files keep their mode');
  t.is(statSync(join(path, 'sub dir', 'file')).uid, 65534);
  t.is(statSync('/etc/passwd').uid, 0, 'links are not followed');
});

test('locally: a file at the path is refused', (t) => {
  const path = join(scratchDir(t), 'plain');
  writeFileSync(path, '');
  t.regex(planLocally(directory({ path })).error ?? '', /is a file, not a directory/);
});
