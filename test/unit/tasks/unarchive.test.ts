import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import type { RunStep } from '../../../src/engine/types.js';
import { archiveFormat, type UnarchiveOptions, unarchive } from '../../../src/tasks/unarchive.js';
import { UserError } from '../../../src/util/errors.js';
import { applyLocally, planLocally, scratchDir } from './local-host.js';

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A .tar.gz in `dir` holding app/VERSION with `version`; returns its path. */
function tarball(dir: string, version: string, name = 'app.tar.gz'): string {
  const tree = join(dir, `tree-${version}`);
  mkdirSync(join(tree, 'app'), { recursive: true });
  writeFileSync(join(tree, 'app', 'VERSION'), `${version}\n`);
  const archive = join(dir, name);
  const made = spawnSync('tar', ['-czf', archive, '-C', tree, 'app']);
  if (made.status !== 0) throw new Error(String(made.stderr));
  return archive;
}

const probed = (stdout: string, files: Array<[string, object]>) => ({
  stdout,
  exitCode: 0,
  files: new Map(files) as never,
});

test('the format comes from the name', (t) => {
  t.is(archiveFormat('a.tar.gz')?.kind, 'tar');
  t.is(archiveFormat('a.TGZ')?.tool?.program, 'gzip');
  t.is(archiveFormat('a.tar.xz')?.tool?.package, 'xz-utils');
  t.is(archiveFormat('a.tbz2')?.tool?.program, 'bzip2');
  t.is(archiveFormat('a.tar')?.tool, undefined);
  t.is(archiveFormat('a.zip')?.tool?.package, 'unzip');
  t.is(archiveFormat('a.rar'), undefined);
});

test('a local archive: sent base64 on stdin, checked, extracted; the same sha256 recorded: nothing', (t) => {
  const dir = scratchDir(t);
  const archive = tarball(dir, '1');
  const task = unarchive({ src: archive, dest: '/srv/app', owner: 'www' });
  const plan = task.plan(probed('verdandi-account user 1\n', [['/srv/app', { type: 'absent' }]]));
  t.is(plan.reason, 'not extracted yet');
  const step = plan.steps[0] as RunStep;
  t.is(step.stdin, readFileSync(archive).toString('base64'));
  t.is(step.description, 'extract app.tar.gz into /srv/app');
  t.regex(step.command, /tar --no-same-owner -x -f "\$a" -C "\$d"/);
  t.regex(step.command, /chown -R www -- "\$d\/\$e"/);
  t.false(step.command.includes(step.stdin as string), 'the archive is not on the command line');

  const done = `verdandi-account user 1\nverdandi-unarchive extracted ${sha(readFileSync(archive))}\n`;
  t.deepEqual(task.plan(probed(done, [['/srv/app', { type: 'dir' }]])), { steps: [] });
  const other = `verdandi-unarchive extracted ${'0'.repeat(64)}\n`;
  t.is(task.plan(probed(other, [['/srv/app', { type: 'dir' }]])).reason, 'the archive changed');
});

test('a remote archive: its sha256 from the host decides; creates skips; a missing one is an error', (t) => {
  const task = unarchive({ remoteSrc: '/tmp/x.tar', dest: '/opt/x' });
  const archive = { type: 'file', sha256: 'a'.repeat(64) };
  const fresh = task.plan(
    probed('', [
      ['/opt/x', { type: 'absent' }],
      ['/tmp/x.tar', archive],
    ]),
  );
  t.is(fresh.reason, 'not extracted yet');
  t.regex((fresh.steps[0] as RunStep).command, /^set -e\na=\/tmp\/x\.tar\n/);
  t.is((fresh.steps[0] as RunStep).stdin, undefined);
  t.deepEqual(
    task.plan(
      probed(`verdandi-unarchive extracted ${'a'.repeat(64)}\n`, [
        ['/opt/x', { type: 'dir' }],
        ['/tmp/x.tar', archive],
      ]),
    ),
    { steps: [] },
  );
  t.regex(
    task.plan(
      probed('', [
        ['/opt/x', { type: 'dir' }],
        ['/tmp/x.tar', { type: 'absent' }],
      ]),
    ).error ?? '',
    /unarchive \/opt\/x: remoteSrc \/tmp\/x\.tar does not exist on the host/,
  );
  const creates = unarchive({ remoteSrc: '/tmp/x.tar', dest: '/opt/x', creates: '/opt/x/bin' });
  t.deepEqual(
    creates.plan(
      probed('verdandi-unarchive creates\n', [
        ['/opt/x', { type: 'dir' }],
        ['/tmp/x.tar', archive],
      ]),
    ),
    { steps: [] },
  );
  t.is(
    creates.plan(
      probed('', [
        ['/opt/x', { type: 'dir' }],
        ['/tmp/x.tar', archive],
      ]),
    ).reason,
    '/opt/x/bin does not exist',
  );
  const recorded = `verdandi-unarchive extracted ${'a'.repeat(64)}\n`;
  t.is(
    creates.plan(
      probed(recorded, [
        ['/opt/x', { type: 'dir' }],
        ['/tmp/x.tar', archive],
      ]),
    ).reason,
    '/opt/x/bin does not exist',
    'with creates, the path decides, not the recorded sha256',
  );
});

test('errors: the tool missing names the package, dest a file, a missing owner', (t) => {
  const zip = unarchive({ remoteSrc: '/tmp/x.zip', dest: '/opt/x', group: 'www' });
  const archive = { type: 'file', sha256: 'a'.repeat(64) };
  t.deepEqual(
    zip.plan(
      probed('verdandi-account group 1\nverdandi-unarchive no-tool\n', [
        ['/opt/x', { type: 'absent' }],
        ['/tmp/x.zip', archive],
      ]),
    ),
    {
      steps: [],
      error:
        "unarchive /opt/x: unzip is not installed on the host: install it first with apt({ packages: 'unzip' })",
    },
  );
  t.regex(
    zip.plan(
      probed('', [
        ['/opt/x', { type: 'file' }],
        ['/tmp/x.zip', archive],
      ]),
    ).error ?? '',
    /\/opt\/x is a file, not a directory/,
  );
  t.regex(
    zip.plan(
      probed('verdandi-account group 0\n', [
        ['/opt/x', { type: 'dir' }],
        ['/tmp/x.zip', archive],
      ]),
    ).error ?? '',
    /group "www" does not exist/,
  );
});

test('options are checked when the task is built', (t) => {
  const build = (opts: UnarchiveOptions) => () => unarchive(opts);
  t.throws(build({ dest: '/opt/x' }), {
    instanceOf: UserError,
    message: /give exactly one of src .* or remoteSrc/,
  });
  t.throws(build({ remoteSrc: '/tmp/a.tar', src: '/tmp/a.tar', dest: '/opt/x' }), {
    instanceOf: UserError,
    message: /give exactly one/,
  });
  t.throws(build({ remoteSrc: '/tmp/a.rar', dest: '/opt/x' }), {
    instanceOf: UserError,
    message: /unarchive \/opt\/x: cannot tell the format of a\.rar from its name/,
  });
  t.throws(build({ src: '/nonexistent/a.tar', dest: '/opt/x' }), {
    instanceOf: UserError,
    message: /cannot read \/nonexistent\/a\.tar: no such file/,
  });
  t.throws(build({ remoteSrc: 'a.tar', dest: '/opt/x' }), {
    instanceOf: UserError,
    message: /absolute path/,
  });
});

test('locally: extracted once, again when the archive changes, never into the owners of the tar', (t) => {
  const dir = scratchDir(t);
  const dest = join(dir, 'dest');
  const archive = tarball(dir, '1');
  const first = planLocally(unarchive({ src: archive, dest }));
  t.is(first.reason, 'not extracted yet');
  applyLocally(first.steps);
  t.is(readFileSync(join(dest, 'app', 'VERSION'), 'utf8'), '1\n');
  t.deepEqual(readdirSync(dest).sort(), ['.verdandi-unarchive-app.tar.gz', 'app']);
  t.is(statSync(join(dest, 'app', 'VERSION')).uid, process.getuid?.() ?? -1);
  t.deepEqual(planLocally(unarchive({ src: archive, dest })).steps, []);

  const next = tarball(dir, '2');
  const second = planLocally(unarchive({ src: next, dest }));
  t.is(second.reason, 'the archive changed');
  applyLocally(second.steps);
  t.is(readFileSync(join(dest, 'app', 'VERSION'), 'utf8'), '2\n');

  const remote = planLocally(unarchive({ remoteSrc: next, dest }));
  t.deepEqual(remote.steps, [], 'the same archive on the host: already extracted');
});
