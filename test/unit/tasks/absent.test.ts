import { existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { absent } from '../../../src/tasks/absent.js';
import { TaskOptionError } from '../../../src/tasks/options.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, probed, scratchDir } from './local-host.js';

/** The plan of absent({ path }) given the probe lines (a `verdandi-stat` line: the path's state). */
const planned = (path: string, ...lines: string[]) => {
  const task = absent({ path });
  return task.plan(probed(task, ...lines));
};

test('nothing runs when the path is already absent', (t) => {
  t.deepEqual(planned('/etc/nginx/sites-enabled/default', 'verdandi-stat absent'), {
    steps: [],
  });
});

test('a file is removed with rm -f and the plan says it is a file', (t) => {
  t.deepEqual(planned('/etc/x y', 'verdandi-stat file 0 root 0 root 644 - -'), {
    steps: [{ kind: 'run', command: "rm -f '/etc/x y'" }],
    reason: 'removes a file',
  });
});

test('a directory is removed with rm -rf', (t) => {
  t.deepEqual(planned('/srv/old', 'verdandi-stat dir 0 root 0 root 755 - -'), {
    steps: [{ kind: 'run', command: 'rm -rf /srv/old' }],
    reason: 'removes a directory',
  });
});

test('a link is removed itself, and the plan says where it pointed', (t) => {
  const line = `verdandi-stat link 0 root 0 root 777 - ${Buffer.from('/srv/data').toString('base64')}`;
  t.deepEqual(planned('/srv/current', line), {
    steps: [{ kind: 'run', command: 'rm -f /srv/current' }],
    reason: 'removes a symbolic link (→ /srv/data)',
  });
});

test('/ and relative paths are refused when the task is built', (t) => {
  t.throws(() => absent({ path: '/' }), { instanceOf: UserError, message: /refusing to remove \// });
  t.throws(() => absent({ path: '//' }), { instanceOf: UserError, message: /refusing to remove \// });
  t.throws(() => absent({ path: 'tmp/x' }), { instanceOf: UserError, message: /absolute path/ });
});

test('paths are normalised before the guard: /. is /, and .. segments are refused, naming the task', (t) => {
  for (const path of ['/.', '/./', '//.//', '/./.']) {
    t.throws(() => absent({ path }), { instanceOf: TaskOptionError, message: /refusing to remove \// }, path);
  }
  for (const path of ['/srv/..', '/srv/../', '/..', '/srv/app/../../etc']) {
    const err = t.throws(() => absent({ path }), { instanceOf: TaskOptionError }, path);
    t.regex(
      err?.message ?? '',
      /^absent .*: path must not contain \.\. segments, got ".*" \(at .*absent\.test\.ts:\d+\)$/,
    );
    t.is(err?.exitCode, 1);
  }
  t.deepEqual(planned('/srv//./old/', 'verdandi-stat dir 0 root 0 root 755 - -').steps, [
    { kind: 'run', command: 'rm -rf /srv/old' },
  ]);
});

test('locally: a directory tree is removed and the second probe is converged', (t) => {
  const path = join(scratchDir(t), "old 'release'");
  mkdirSync(join(path, 'sub'), { recursive: true });
  writeFileSync(join(path, 'sub', 'f'), 'x');
  const { first, second } = convergeLocally(absent({ path }));
  t.is(first.reason, 'removes a directory');
  t.deepEqual(second.steps, []);
  t.false(existsSync(path));
});

test('locally: a link to a directory is removed without touching the directory', (t) => {
  const dir = scratchDir(t);
  mkdirSync(join(dir, 'data'));
  writeFileSync(join(dir, 'data', 'keep'), 'x');
  const path = join(dir, 'current');
  symlinkSync(join(dir, 'data'), path);
  const { first, second } = convergeLocally(absent({ path }));
  t.regex(first.reason ?? '', /^removes a symbolic link/);
  t.deepEqual(second.steps, []);
  t.throws(() => lstatSync(path), { code: 'ENOENT' });
  t.true(existsSync(join(dir, 'data', 'keep')));
});
