import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { globWord, prune } from '../../../src/tasks/prune.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, planLocally, scratchDir } from './local-host.js';

const b64 = (name: string) => Buffer.from(name).toString('base64');
const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const listed = (...names: string[]) =>
  out('verdandi-prune dir', ...names.map((n) => `verdandi-prune file ${b64(n)}`));

const vhosts = { dir: '/etc/nginx/sites-enabled', match: 'verdandi-*.conf', keep: ['verdandi-app.conf'] };

test('files matching and not kept are removed with one rm -f; the reason names them', (t) => {
  const plan = prune(vhosts).plan(listed('verdandi-app.conf', 'verdandi-old.conf', 'verdandi-b c.conf'));
  t.deepEqual(plan, {
    steps: [
      {
        kind: 'run',
        command:
          "rm -f -- '/etc/nginx/sites-enabled/verdandi-b c.conf' /etc/nginx/sites-enabled/verdandi-old.conf",
      },
    ],
    reason: 'removes verdandi-b c.conf, verdandi-old.conf',
  });
});

test('nothing to remove: converged', (t) => {
  t.deepEqual(prune(vhosts).plan(listed('verdandi-app.conf')), { steps: [] });
  t.deepEqual(prune(vhosts).plan(listed()), { steps: [] });
  t.deepEqual(prune(vhosts).plan(out('verdandi-prune no-dir')), { steps: [] });
});

test('a probe without its state line is an error, never a silent "ok"', (t) => {
  t.regex(
    prune(vhosts).plan({ stdout: 'banner\n', exitCode: 2 }).error ?? '',
    /could not list .* exit code 2/,
  );
});

test('label and options', (t) => {
  t.is(prune(vhosts).name, 'prune /etc/nginx/sites-enabled/verdandi-*.conf');
  t.is(prune({ ...vhosts, name: 'remove vhosts no longer listed' }).name, 'remove vhosts no longer listed');
  t.throws(() => prune({ ...vhosts, dir: '/' }), { instanceOf: UserError, message: /refusing to prune \// });
  t.throws(() => prune({ ...vhosts, dir: 'etc' }), {
    instanceOf: UserError,
    message: /dir must be an absolute path/,
  });
  t.throws(() => prune({ ...vhosts, match: '../*.conf' }), {
    instanceOf: UserError,
    message: /match must be/,
  });
  t.throws(() => prune({ ...vhosts, keep: ['a/b'] }), {
    instanceOf: UserError,
    message: /keep: "a\/b" is not a file name/,
  });
});

test('the pattern keeps its wildcards bare and quotes the rest', (t) => {
  t.is(globWord('verdandi-*.conf'), 'verdandi-*.conf');
  t.is(globWord("it's ?.conf"), "'it'\\''s '?.conf");
});

test('locally: removes only the stale matching files, leaves kept, unmatched, hidden and directories; then converged', (t) => {
  const dir = scratchDir(t);
  for (const name of [
    'verdandi-app.conf',
    'verdandi-old.conf',
    'verdandi-x y.conf',
    'default',
    '.verdandi-tmp.conf',
  ]) {
    writeFileSync(join(dir, name), 'x');
  }
  mkdirSync(join(dir, 'verdandi-dir.conf'));
  symlinkSync('/nonexistent', join(dir, 'verdandi-dangling.conf'));
  const task = prune({ dir, match: 'verdandi-*.conf', keep: ['verdandi-app.conf'] });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, 'removes verdandi-dangling.conf, verdandi-old.conf, verdandi-x y.conf');
  t.deepEqual(second, { steps: [] });
  t.deepEqual(readdirSync(dir).sort(), [
    '.verdandi-tmp.conf',
    'default',
    'verdandi-app.conf',
    'verdandi-dir.conf',
  ]);
});

test('locally: a missing directory holds nothing to prune', (t) => {
  const dir = join(scratchDir(t), 'missing');
  t.deepEqual(planLocally(prune({ dir, match: '*.conf' })), { steps: [] });
  t.false(existsSync(dir));
});
