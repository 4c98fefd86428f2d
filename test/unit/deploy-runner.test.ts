import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import type { Connection, ExecOptions, ExecResult } from '../../src/connection/types.js';
import { makeBundle, resolveRef, updateMirror } from '../../src/deploy/git.js';
import { DeployOutput } from '../../src/deploy/output.js';
import type { DeployPlan, PlanStep } from '../../src/deploy/plan.js';
import { runPlan } from '../../src/deploy/runner.js';
import { RunEvents } from '../../src/engine/events.js';
import { clearSecrets, registerSecret } from '../../src/util/redact.js';

const run = promisify(execFile);

/** A connection that records commands and answers each by a rule. */
class FakeConnection implements Connection {
  readonly host = 'fake';
  roundTrips = 0;
  readonly ran: string[] = [];
  constructor(private readonly answer: (command: string) => Partial<ExecResult>) {}
  async exec(script: string, _opts?: ExecOptions): Promise<ExecResult> {
    this.roundTrips++;
    this.ran.push(script);
    return { stdout: '', stderr: '', code: 0, ...this.answer(script) };
  }
  async close() {}
}

const quiet = () => new DeployOutput(new RunEvents(), { verbose: false });

const step = (title: string, extra: Partial<PlanStep> = {}): PlanStep => ({
  phase: 'build',
  title,
  command: `do ${title}`,
  ...extra,
});

const plan = (steps: PlanStep[]): DeployPlan => ({
  release: 'r',
  prune: [],
  steps,
  logEntry: {
    action: 'deploy',
    site: 'app',
    release: 'r',
    time: '2026-01-01T00:00:00.000Z',
    by: 't',
    outcome: 'deployed',
  },
});

const where = { host: 'fake', site: 'app' };

test('a failing step before the switch undoes what was done, newest first', async (t) => {
  const conn = new FakeConnection((c) => (c === 'do health' ? { code: 1, stderr: 'answered 500' } : {}));
  const result = await runPlan(
    conn,
    plan([
      step('checkout', { undo: ['undo checkout'] }),
      step('maintenance on', { undo: ['maintenance off'] }),
      step('start', { undo: ['stop new'] }),
      step('health'),
      step('switch', { pointOfNoReturn: true }),
    ]),
    where,
    quiet(),
  );
  t.false(result.ok);
  t.false(result.live);
  t.is(result.failure?.step, 'health');
  t.regex(result.failure!.report(), /exit code: 1[\s\S]*answered 500/);
  t.deepEqual(conn.ran, [
    'do checkout',
    'do maintenance on',
    'do start',
    'do health',
    'stop new',
    'maintenance off',
    'undo checkout',
  ]);
});

test('after the point of no return nothing is undone', async (t) => {
  const conn = new FakeConnection((c) => (c === 'do current' ? { code: 1 } : {}));
  const result = await runPlan(
    conn,
    plan([step('start', { undo: ['stop new'] }), step('switch', { pointOfNoReturn: true }), step('current')]),
    where,
    quiet(),
  );
  t.false(result.ok);
  t.true(result.live);
  t.deepEqual(conn.ran, ['do start', 'do switch', 'do current']);
});

test('the migration check decides whether the migration steps run; a failed migration is reported as run', async (t) => {
  const steps = [
    step('check', { decides: 'pending-migrations' }),
    step('maintenance on', { only: 'pending-migrations', undo: ['maintenance off'] }),
    step('migrate', { only: 'pending-migrations', migrates: true }),
    step('start'),
  ];
  const none = new FakeConnection(() => ({}));
  const r1 = await runPlan(none, plan(steps), where, quiet());
  t.true(r1.ok);
  t.false(r1.pendingMigrations);
  t.deepEqual(none.ran, ['do check', 'do start']);

  const pending = new FakeConnection((c) =>
    c === 'do check' ? { code: 1 } : c === 'do start' ? { code: 2 } : {},
  );
  const r2 = await runPlan(pending, plan(steps), where, quiet());
  t.true(r2.pendingMigrations);
  t.true(r2.migrated);
  t.is(r2.failure?.step, 'start');
  t.deepEqual(pending.ran, ['do check', 'do maintenance on', 'do migrate', 'do start', 'maintenance off']);
});

test('best-effort steps only warn', async (t) => {
  const conn = new FakeConnection((c) => (c === 'do prune' ? { code: 1 } : {}));
  const r = await runPlan(conn, plan([step('prune', { bestEffort: true }), step('record')]), where, quiet());
  t.true(r.ok);
  t.is(r.warnings.length, 1);
});

test('push transport: the mirror resolves refs and a bundle carries only what the host lacks', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vd-git-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const src = join(dir, 'src');
  const git = (cwd: string, ...args: string[]) =>
    run('git', ['-c', 'user.name=t', '-c', 'user.email=t@t.invalid', ...args], { cwd }).then((r) =>
      r.stdout.trim(),
    );
  await run('git', ['init', '-q', '-b', 'main', src]);
  await writeFile(join(src, 'a'), '1');
  await git(src, 'add', '-A');
  await git(src, 'commit', '-qm', 'one');
  const one = await git(src, 'rev-parse', 'HEAD');
  await git(src, 'tag', 'v1');
  await writeFile(join(src, 'a'), '2');
  await git(src, 'commit', '-qam', 'two');
  const two = await git(src, 'rev-parse', 'HEAD');

  const mirror = join(dir, 'mirror.git');
  await updateMirror(mirror, src);
  t.deepEqual(await resolveRef(mirror, 'main'), { commit: two, ref: 'main', kind: 'branch' });
  t.deepEqual(await resolveRef(mirror, 'v1'), { commit: one, ref: 'v1', kind: 'tag' });
  t.is((await resolveRef(mirror, one.slice(0, 8)))?.commit, one);
  t.is(await resolveRef(mirror, 'nope'), undefined);

  // The "host": a bare repository that already has commit one.
  const host = join(dir, 'host.git');
  await run('git', ['init', '-q', '--bare', host]);
  const fullBundle = await makeBundle(mirror, one, []);
  const full = await readFile(fullBundle.file);
  t.is(full.length, fullBundle.bytes);
  await fullBundle.remove();
  await writeFile(join(dir, 'full.bundle'), full);
  await git(host, 'fetch', '-q', join(dir, 'full.bundle'), `+refs/verdandi/deploy:refs/deploys/${one}`);
  const tips = (await git(host, 'for-each-ref', '--format=%(objectname)')).split('\n');
  const incBundle = await makeBundle(mirror, two, tips);
  const inc = await readFile(incBundle.file);
  await incBundle.remove();
  t.true(inc.length < full.length + 200);
  await writeFile(join(dir, 'inc.bundle'), inc);
  // An incremental bundle needs its prerequisite (commit one) on the host: the fetch proves it is there.
  await git(host, 'fetch', '-q', join(dir, 'inc.bundle'), `+refs/verdandi/deploy:refs/deploys/${two}`);
  t.is(await git(host, 'rev-parse', `refs/deploys/${two}`), two);
  t.regex(await git(dir, 'bundle', 'list-heads', join(dir, 'inc.bundle')), /refs\/verdandi\/deploy/);
  // ...and that it is incremental: it names commit one as the commit it builds on.
  const verify = await run('git', ['bundle', 'verify', join(dir, 'inc.bundle')], { cwd: host });
  t.regex(verify.stdout + verify.stderr, new RegExp(`requires this ref:[\\s\\S]*${one}`));
});

test('a failure report is redacted: a secret in the command or its output never shows', async (t) => {
  registerSecret('s3cr3t-password');
  t.teardown(clearSecrets);
  const conn = new FakeConnection(() => ({ code: 1, stderr: 'could not connect with s3cr3t-password' }));
  const r = await runPlan(
    conn,
    plan([step('migrate', { command: 'DB=s3cr3t-password migrate' })]),
    where,
    quiet(),
  );
  const report = r.failure!.report();
  t.notRegex(report, /s3cr3t/);
  t.regex(report, /DB=\[secret\] migrate/);
  t.regex(report, /could not connect with \[secret\]/);
});
