/**
 * The lock on a secrets file (src/secrets/lock.ts), with real CLI processes: ten `secrets set` at once
 * lose no key; a writer waits for a live holder or fails naming it; a holder killed with SIGKILL has its
 * lock taken over, and the plaintext its edit left in RAM is wiped by the next command.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { deadHolder, type LockHolder, lockTimeoutSeconds } from '../../src/secrets/lock.js';
import { UserError } from '../../src/util/errors.js';
import {
  cleanEnv,
  collect,
  makeProject,
  runSecrets,
  script,
  startSecrets,
  writePasswordFile,
} from '../fixtures/secrets/helpers.js';
import { removeProject, runCli } from '../helpers/cli.js';

const PASSWORD = 'lock-Pw-6604';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function project(t: ExecutionContext): { dir: string; asc: string } {
  const dir = makeProject();
  t.teardown(() => removeProject(dir));
  writePasswordFile(dir, 'staging', PASSWORD);
  return { dir, asc: join(dir, 'secrets', 'staging.yml.asc') };
}

/**
 * A RAM directory for this test's edits: the commands of other tests, running meanwhile, wipe the
 * leftovers of killed edits they find (and say so) in the shared one.
 */
function ownEditDir(t: ExecutionContext): { VERDANDI_SECRETS_EDIT_DIR: string } {
  const editDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'vd-ts-edit-'));
  t.teardown(() => removeProject(editDir));
  return { VERDANDI_SECRETS_EDIT_DIR: editDir };
}

async function waitFor(what: string, ready: () => boolean, timeoutMs = 120_000): Promise<void> {
  const start = Date.now();
  while (!ready()) {
    if (Date.now() - start > timeoutMs) throw new Error(`${what} did not happen`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * `secrets edit staging` with an editor that writes the file it edits and its own pid to `marker`,
 * then waits until `release` exists: it holds the lock as long as the test wants.
 */
function startHeldEdit(dir: string, env: Record<string, string> = {}) {
  const marker = join(dir, 'marker');
  const release = join(dir, 'release');
  const editor = script(
    dir,
    'hold.sh',
    `printf '%s\\n%s\\n' "$1" $$ > ${marker}.tmp && mv ${marker}.tmp ${marker}
while [ ! -e ${release} ]; do sleep 0.1; done`,
  );
  const child = startSecrets(['edit', 'staging'], { cwd: dir, env: { ...env, EDITOR: editor } });
  const done = collect(child);
  return {
    child,
    done,
    started: () => waitFor('the editor', () => existsSync(marker)),
    editedFile: () => readFileSync(marker, 'utf8').split('\n')[0],
    editorPid: () => Number(readFileSync(marker, 'utf8').split('\n')[1]),
    release: () => writeFileSync(release, ''),
  };
}

test('ten `secrets set` at once: every key is there, every command exits 0', async (t) => {
  t.timeout(10 * 60_000);
  const { dir, asc } = project(t);
  const keys = Array.from({ length: 10 }, (_, i) => `key${i}`);
  const env = { ...(cleanEnv() as Record<string, string>), VERDANDI_SECRETS_LOCK_TIMEOUT: '500' };
  // No file yet: the first writer creates it, the nine others each add their key to what is there.
  const results = await Promise.all(
    keys.map((key) =>
      runCli(['secrets', 'set', 'staging', key], { cwd: dir, env, input: `value-of-${key}-xyz` }),
    ),
  );
  for (const [i, r] of results.entries()) {
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `set key${i} in secrets/staging.yml.asc (encrypted to password)\n`);
  }
  const view = await runSecrets(['view', 'staging'], { cwd: dir });
  t.is(view.code, 0, view.stderr);
  const lines = view.stdout.trim().split('\n').sort();
  t.deepEqual(lines, keys.map((key) => `${key}: value-of-${key}-xyz`).sort());
  t.true(readFileSync(asc, 'utf8').startsWith('-----BEGIN PGP MESSAGE-----'));
  t.deepEqual(
    readdirSync(dirname(asc)).filter((name) => name.includes('.lock') || name.startsWith('.tmp')),
    [],
    'no lock or temporary file left',
  );
});

test('a live holder: a writer fails after its bound naming it, or waits and then writes', async (t) => {
  t.timeout(5 * 60_000);
  const { dir, asc } = project(t);
  const env = ownEditDir(t);
  const first = await runSecrets(['set', 'staging', 'api_key'], { cwd: dir, env, input: 'ak_first_value_1' });
  t.is(first.code, 0, first.stderr);
  const edit = startHeldEdit(dir, env);
  t.teardown(() => edit.release());
  await edit.started();
  const pid = edit.child.pid as number;
  const before = sha256(asc);

  const locked = new RegExp(
    `^error: secrets/staging\\.yml\\.asc is locked by pid ${pid} \\(verdandi secrets edit staging\\) ` +
      `since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z; waited (1|0) s\\n` +
      '  → run the command again when that one is done, or wait longer with --lock-timeout SECONDS ' +
      '\\(or \\$VERDANDI_SECRETS_LOCK_TIMEOUT\\)',
  );
  const byOption = await runSecrets(['set', 'staging', 'other', '--lock-timeout', '1'], {
    cwd: dir,
    env,
    input: 'other-value-22',
  });
  t.is(byOption.code, 1);
  t.regex(
    byOption.stderr,
    /^waiting for the lock on secrets\/staging\.yml\.asc: held by pid \d+ .*\(up to 1 s\)\n/,
  );
  t.regex(byOption.stderr.split('\n').slice(1).join('\n'), locked);
  const byEnv = await runSecrets(['set', 'staging', 'other'], {
    cwd: dir,
    env: { ...env, VERDANDI_SECRETS_LOCK_TIMEOUT: '0' },
    input: 'other-value-22',
  });
  t.is(byEnv.code, 1);
  t.regex(byEnv.stderr, locked, 'a bound of 0 fails at once, without waiting');
  t.is(sha256(asc), before);

  // Reading is not locked, and the live edit's plaintext copy is not taken for a leftover.
  const view = await runSecrets(['view', 'staging'], { cwd: dir, env });
  t.is(view.code, 0, view.stderr);
  t.is(view.stderr, '');
  t.true(existsSync(edit.editedFile()));

  // A writer with the default bound waits, then writes once the edit is done.
  const waiter = startSecrets(['set', 'staging', 'other'], { cwd: dir, env });
  let waiterErr = '';
  waiter.stderr?.on('data', (d: Buffer) => {
    waiterErr += d.toString();
  });
  const waited = collect(waiter, 'other-value-22');
  await waitFor('the waiting line', () => waiterErr.includes('waiting for the lock'));
  t.is(
    waiterErr,
    `waiting for the lock on secrets/staging.yml.asc: held by pid ${pid} (verdandi secrets edit staging) since ` +
      `${/since (\S+) /.exec(waiterErr)?.[1]} (up to 60 s)\n`,
  );
  edit.release();
  const edited = await edit.done;
  t.is(edited.code, 0, edited.stderr);
  t.is(edited.stdout, 'no change: secrets/staging.yml.asc left as it was\n');
  const after = await waited;
  t.is(after.code, 0, after.stderr);
  t.is(after.stdout, 'set other in secrets/staging.yml.asc (encrypted to password)\n');
  const all = await runSecrets(['view', 'staging'], { cwd: dir, env });
  t.is(all.stdout, 'api_key: ak_first_value_1\nother: other-value-22\n');
});

test('SIGKILL during edit: the next command takes the lock over and wipes the plaintext left in RAM', async (t) => {
  t.timeout(5 * 60_000);
  const { dir, asc } = project(t);
  const env = ownEditDir(t);
  const editDir = env.VERDANDI_SECRETS_EDIT_DIR;
  const first = await runSecrets(['set', 'staging', 'api_key'], { cwd: dir, input: 'ak_killed_value_3' });
  t.is(first.code, 0, first.stderr);
  const edit = startHeldEdit(dir, env);
  t.teardown(() => edit.release());
  await edit.started();
  const pid = edit.child.pid as number;
  const leftover = edit.editedFile();
  const exited = new Promise((resolve) => edit.child.on('exit', resolve));
  process.kill(pid, 'SIGKILL');
  await exited;
  // The editor outlives Verdandi (it got no signal) and holds its output pipes: end it.
  process.kill(edit.editorPid(), 'SIGTERM');
  await edit.done;
  t.true(existsSync(leftover), 'SIGKILL left the plaintext copy');
  t.true(readFileSync(leftover, 'utf8').includes('ak_killed_value_3'));
  t.true(existsSync(`${asc}.lock`), 'SIGKILL left the lock');

  t.is(dirname(dirname(leftover)), editDir);
  const next = await runSecrets(['set', 'staging', 'other'], { cwd: dir, env, input: 'other-value-44' });
  t.is(next.code, 0, next.stderr);
  const [removed, tookOver, ...rest] = next.stderr.split('\n');
  t.is(
    removed,
    `note: removed 1 plaintext copy of secrets left in ${editDir} by a secrets edit or create that was killed`,
  );
  t.regex(
    tookOver,
    new RegExp(
      `^note: took over the lock on secrets/staging\\.yml\\.asc from pid ${pid} \\(verdandi secrets edit staging\\) ` +
        `since \\S+: its process ${pid} is gone$`,
    ),
  );
  t.deepEqual(rest, ['']);
  t.false(existsSync(leftover));
  t.false(existsSync(dirname(leftover)));
  t.false(existsSync(`${asc}.lock`));
  t.false(next.stderr.includes('ak_killed_value_3'));
  t.deepEqual(readdirSync(editDir), []);
  const view = await runSecrets(['view', 'staging'], { cwd: dir, env });
  t.is(view.stdout, 'api_key: ak_killed_value_3\nother: other-value-44\n');
  t.is(view.stderr, '', 'said once: nothing is left to remove');
});

test('deadHolder: gone, or its pid now another process, on this machine only', (t) => {
  const holder: LockHolder = {
    pid: 7,
    pidStart: '100',
    host: hostname(),
    command: 'verdandi secrets edit staging',
    since: '2026-12-05T20:00:00.000Z',
    token: 'abc',
  };
  t.is(
    deadHolder(holder, (pid) => (pid === 7 ? '100' : undefined)),
    undefined,
  );
  t.is(
    deadHolder(holder, () => undefined),
    'its process 7 is gone',
  );
  t.is(
    deadHolder(holder, () => '200'),
    "its process 7 is gone (the pid is another process's now)",
  );
  t.is(
    deadHolder({ ...holder, host: 'elsewhere' }, () => undefined),
    undefined,
  );
  t.is(deadHolder(undefined), 'it holds no readable holder');
});

test('lockTimeoutSeconds: the option, then $VERDANDI_SECRETS_LOCK_TIMEOUT, then 60; bad values are usage errors', (t) => {
  const saved = process.env.VERDANDI_SECRETS_LOCK_TIMEOUT;
  t.teardown(() => {
    if (saved === undefined) delete process.env.VERDANDI_SECRETS_LOCK_TIMEOUT;
    else process.env.VERDANDI_SECRETS_LOCK_TIMEOUT = saved;
  });
  delete process.env.VERDANDI_SECRETS_LOCK_TIMEOUT;
  t.is(lockTimeoutSeconds(), 60);
  process.env.VERDANDI_SECRETS_LOCK_TIMEOUT = '5';
  t.is(lockTimeoutSeconds(), 5);
  t.is(lockTimeoutSeconds('0.5'), 0.5);
  const bad = t.throws(() => lockTimeoutSeconds('soon'), { instanceOf: UserError });
  t.is(bad.message, '--lock-timeout must be a number of seconds (0 or more), got "soon"');
  process.env.VERDANDI_SECRETS_LOCK_TIMEOUT = '-1';
  const badEnv = t.throws(() => lockTimeoutSeconds(), { instanceOf: UserError });
  t.is(badEnv.message, '$VERDANDI_SECRETS_LOCK_TIMEOUT must be a number of seconds (0 or more), got "-1"');
});
