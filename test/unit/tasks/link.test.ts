import { lstatSync, mkdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { link } from '../../../src/tasks/link.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, isRoot, planLocally, probed, scratchDir } from './local-host.js';

const linkLine = (target: string, owner = 'root') =>
  `verdandi-stat link 0 ${owner} 0 root 777 - ${Buffer.from(target).toString('base64')}`;
const asRoot = isRoot ? test : test.skip;

const switchCommand =
  'rm -f /srv/app/.current.verdandi-link && ln -s -- /srv/app/releases/2 /srv/app/.current.verdandi-link' +
  ' && mv -T -f /srv/app/.current.verdandi-link /srv/app/current';

test('a missing link is made beside the path and renamed over it', (t) => {
  const task = link({ path: '/srv/app/current', target: '/srv/app/releases/2' });
  t.is(task.name, 'link /srv/app/current → /srv/app/releases/2');
  t.deepEqual(task.plan(probed(task, 'verdandi-stat absent')), {
    steps: [
      { kind: 'run', command: switchCommand, description: 'link /srv/app/current → /srv/app/releases/2' },
    ],
    reason: 'link is missing',
  });
});

test('a link to the right target needs nothing', (t) => {
  const task = link({ path: '/srv/app/current', target: '/srv/app/releases/2' });
  t.deepEqual(task.plan(probed(task, linkLine('/srv/app/releases/2'))).steps, []);
});

test('a link to another target is switched atomically', (t) => {
  const task = link({ path: '/srv/app/current', target: '/srv/app/releases/2' });
  const plan = task.plan(probed(task, linkLine('/srv/app/releases/1')));
  t.deepEqual(
    plan.steps.map((s) => s.kind === 'run' && s.command),
    [switchCommand],
  );
  t.is(plan.reason, 'points to /srv/app/releases/1, not /srv/app/releases/2');
});

test('the owner of a new link is set on the temporary link before the rename', (t) => {
  const task = link({ path: '/srv/current', target: 'releases/2', owner: 'deploy', group: 'deploy' });
  const plan = task.plan(
    probed(task, 'verdandi-stat absent', 'verdandi-account user 1', 'verdandi-account group 1'),
  );
  t.is(
    plan.steps[0].kind === 'run' && plan.steps[0].command,
    'rm -f /srv/.current.verdandi-link && ln -s -- releases/2 /srv/.current.verdandi-link' +
      ' && chown -h deploy:deploy /srv/.current.verdandi-link && mv -T -f /srv/.current.verdandi-link /srv/current',
  );
});

test('a right link with the wrong owner gets chown -h', (t) => {
  const task = link({ path: '/srv/current', target: 'releases/2', owner: 'deploy' });
  t.deepEqual(task.plan(probed(task, linkLine('releases/2'), 'verdandi-account user 1')), {
    steps: [{ kind: 'run', command: 'chown -h deploy /srv/current' }],
    reason: 'owner root → deploy',
  });
});

test('a regular file is replaced by the link', (t) => {
  const task = link({ path: '/srv/app/current', target: '/srv/app/releases/2' });
  t.is(
    task.plan(probed(task, 'verdandi-stat file 0 root 0 root 644 - -')).reason,
    '/srv/app/current is a file, replaced by a link',
  );
});

test('a real directory is never replaced', (t) => {
  const task = link({ path: '/srv/app/current', target: '/srv/app/releases/2' });
  t.deepEqual(task.plan(probed(task, 'verdandi-stat dir 0 root 0 root 755 - -')), {
    steps: [],
    error:
      'link /srv/app/current: /srv/app/current is a directory, not a link; refusing to replace it (move or remove it by hand)',
  });
});

test('an unknown owner is an error', (t) => {
  const task = link({ path: '/srv/current', target: 'x', owner: 'ghost' });
  t.regex(
    task.plan(probed(task, 'verdandi-stat absent', 'verdandi-account user 0')).error ?? '',
    /user "ghost" does not exist/,
  );
});

test('an empty target is refused when the task is built', (t) => {
  t.throws(() => link({ path: '/srv/current', target: '' }), {
    instanceOf: UserError,
    message: /target must be/,
  });
});

test('locally: links with spaces and quotes are made, switched, and converge', (t) => {
  const dir = scratchDir(t);
  const path = join(dir, "cur'rent link");
  const first = convergeLocally(link({ path, target: "releases/one 'a'" }));
  t.is(first.first.reason, 'link is missing');
  t.deepEqual(first.second.steps, []);
  t.is(readlinkSync(path), "releases/one 'a'");

  const second = convergeLocally(link({ path, target: 'releases/two "b"' }));
  t.is(second.first.reason, `points to releases/one 'a', not releases/two "b"`);
  t.deepEqual(second.second.steps, []);
  t.is(readlinkSync(path), 'releases/two "b"');
});

test('locally: a link to a directory is switched, not followed into the directory', (t) => {
  const dir = scratchDir(t);
  mkdirSync(join(dir, 'r1'));
  mkdirSync(join(dir, 'r2'));
  const path = join(dir, 'current');
  symlinkSync('r1', path);
  const { second } = convergeLocally(link({ path, target: 'r2' }));
  t.deepEqual(second.steps, []);
  t.is(readlinkSync(path), 'r2');
  t.throws(() => lstatSync(join(dir, 'r1', 'r2')), { code: 'ENOENT' });
});

test('locally: a file is replaced by the link, a directory is refused', (t) => {
  const dir = scratchDir(t);
  const file = join(dir, 'was a file');
  writeFileSync(file, 'x');
  t.deepEqual(convergeLocally(link({ path: file, target: '/etc/hostname' })).second.steps, []);
  t.true(lstatSync(file).isSymbolicLink());

  const sub = join(dir, 'a dir');
  mkdirSync(sub);
  t.regex(planLocally(link({ path: sub, target: '/tmp' })).error ?? '', /is a directory, not a link/);
});

asRoot('locally: the link itself gets the owner', (t) => {
  const path = join(scratchDir(t), 'owned link');
  const { second } = convergeLocally(
    link({ path, target: '/etc/passwd', owner: 'nobody', group: 'nogroup' }),
  );
  t.deepEqual(second.steps, []);
  t.is(lstatSync(path).uid, 65534);
  t.is(lstatSync('/etc/passwd').uid, 0);
});
