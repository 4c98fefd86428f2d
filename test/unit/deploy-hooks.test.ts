/**
 * Deploy hooks (src/deploy/hooks.ts): the environment a hook gets (the run's facts, never a variable
 * that may hold a secret), which hooks run after which outcome, a real hook script run (its output, its
 * exit code, its timeout stopping what it started), a failing pre hook stopping the command (exit 1),
 * and the post hooks as a consumer of the run's events.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  type HookFacts,
  hookEnv,
  hooksAfter,
  PostHooks,
  runHook,
  runPreHook,
} from '../../src/deploy/hooks.js';
import { type RunEvent, RunEvents } from '../../src/engine/events.js';
import { UserError } from '../../src/util/errors.js';
import { clearSecrets, registerSecret } from '../../src/util/redact.js';

function project(hooks: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'vd-hooks-'));
  mkdirSync(join(dir, 'hooks'));
  for (const [name, body] of Object.entries(hooks)) {
    writeFileSync(join(dir, 'hooks', name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, 'hooks', name), 0o755);
  }
  return dir;
}

const facts = (projectDir: string): HookFacts => ({
  action: 'deploy',
  env: 'prod',
  projectDir,
  sites: ['shop', 'blog', 'shop'],
  hosts: ['web1', 'web2'],
  branch: 'main',
  by: 'alice@laptop',
});

test('the environment: the run as VERDANDI_* variables, no variable that may hold a secret', (t) => {
  const env = hookEnv(
    {
      PATH: '/usr/bin',
      HOME: '/home/a',
      VERDANDI_VAULT_PASSWORD: 'vault pw',
      VERDANDI_PGP_PASSPHRASE: 'pass phrase',
      VERDANDI_PGP_KEY: '/keys/k.asc',
      VERDANDI_OUTCOME: 'stale',
    },
    'post-deploy',
    {
      ...facts('/p'),
      outcome: 'ok',
      exitCode: 0,
      commits: ['abc123', 'abc123'],
      releases: ['r1'],
      failed: [],
    },
  );
  t.deepEqual(env, {
    PATH: '/usr/bin',
    HOME: '/home/a',
    VERDANDI_HOOK: 'post-deploy',
    VERDANDI_ACTION: 'deploy',
    VERDANDI_ENV: 'prod',
    VERDANDI_PROJECT_DIR: '/p',
    VERDANDI_SITES: 'shop,blog',
    VERDANDI_HOSTS: 'web1,web2',
    VERDANDI_BRANCH: 'main',
    VERDANDI_BY: 'alice@laptop',
    VERDANDI_OUTCOME: 'ok',
    VERDANDI_EXIT_CODE: '0',
    VERDANDI_COMMIT: 'abc123',
    VERDANDI_RELEASE: 'r1',
    VERDANDI_FAILED: '',
  });
  // A pre hook knows no outcome yet.
  t.false('VERDANDI_OUTCOME' in hookEnv({}, 'pre-deploy', facts('/p')));
});

test('a value that is a secret is redacted in the environment', (t) => {
  registerSecret('branch-named-like-the-secret');
  try {
    const env = hookEnv({}, 'pre-deploy', { ...facts('/p'), branch: 'branch-named-like-the-secret' });
    t.is(env.VERDANDI_BRANCH, '[secret]');
  } finally {
    clearSecrets();
  }
});

test('which hooks run after which outcome', (t) => {
  t.deepEqual(hooksAfter('deploy', 'ok'), ['post-deploy']);
  t.deepEqual(hooksAfter('rollback', 'ok'), ['post-rollback']);
  t.deepEqual(hooksAfter('deploy', 'failed'), ['deploy-failed']);
  t.deepEqual(hooksAfter('rollback', 'interrupted'), ['deploy-failed']);
});

test('a hook runs in the project with its variables; an absent hook is nothing; a non-executable one is a usage error', async (t) => {
  const dir = project({
    'pre-deploy': 'echo "env=$VERDANDI_ENV sites=$VERDANDI_SITES pwd=$(pwd)"; echo oops >&2; exit 3',
  });
  const run = await runHook(facts(dir), 'pre-deploy');
  t.is(run?.code, 3);
  t.false(run?.timedOut);
  t.regex(run?.output ?? '', new RegExp(`env=prod sites=shop,blog pwd=${dir}\noops`));
  t.is(await runHook(facts(dir), 'post-deploy'), undefined);
  writeFileSync(join(dir, 'hooks', 'post-deploy'), 'echo hi\n');
  const err = await t.throwsAsync(runHook(facts(dir), 'post-deploy'), { instanceOf: UserError });
  t.regex(err?.message ?? '', /hooks\/post-deploy is not executable/);
});

test('a hook past its timeout is stopped with what it started', async (t) => {
  const dir = project({ 'pre-deploy': `sleep 30 & echo $! > ${'"$VERDANDI_PROJECT_DIR/child"'}; wait` });
  const started = Date.now();
  const run = await runHook(facts(dir), 'pre-deploy', 1);
  t.true(run?.timedOut);
  t.true(Date.now() - started < 10_000);
  const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
  t.false(
    existsSync(`/proc/${child}`) && !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z '),
    'the sleep outlived its hook',
  );
});

test('a failing pre hook stops the command (exit 1) with its output shown', async (t) => {
  const dir = project({ 'pre-deploy': 'echo "CI is red: refusing"; exit 1' });
  const events = new RunEvents();
  const seen: RunEvent[] = [];
  events.on((e) => seen.push(e));
  const err = await t.throwsAsync(runPreHook(events, facts(dir), 'pre-deploy'), { instanceOf: UserError });
  t.is(err?.exitCode, 1);
  t.regex(
    err?.message ?? '',
    /hooks\/pre-deploy failed \(exit 1\): the deploy did not start, no host was contacted/,
  );
  t.true(seen.some((e) => e.type === 'message' && e.text === 'hooks/pre-deploy| CI is red: refusing'));
});

test('post hooks consume the events: site-done gives commits and failures, run-ended starts them', async (t) => {
  const dir = project({
    'post-deploy': 'env | grep ^VERDANDI_ | sort > "$VERDANDI_PROJECT_DIR/post-deploy.env"',
    'deploy-failed': 'echo "$VERDANDI_FAILED $VERDANDI_OUTCOME" > "$VERDANDI_PROJECT_DIR/failed.txt"',
  });
  const ok = new RunEvents();
  const hooks = new PostHooks(ok, facts(dir));
  ok.on(hooks.handle);
  ok.emit({
    type: 'site-done',
    host: 'web1',
    site: 'shop',
    action: 'deploy',
    ok: true,
    ref: 'main',
    commit: 'c0ffee1',
    release: '20261206-c0ffee1',
    durationMs: 5,
  });
  ok.emit({ type: 'run-ended', exitCode: 0, durationMs: 9, check: false, roundTrips: {} });
  await hooks.settled();
  const env = readFileSync(join(dir, 'post-deploy.env'), 'utf8');
  t.regex(env, /^VERDANDI_COMMIT=c0ffee1$/m);
  t.regex(env, /^VERDANDI_RELEASE=20261206-c0ffee1$/m);
  t.regex(env, /^VERDANDI_OUTCOME=ok$/m);
  t.false(existsSync(join(dir, 'failed.txt')));

  const bad = new RunEvents();
  const after = new PostHooks(bad, facts(dir));
  bad.on(after.handle);
  bad.emit({
    type: 'site-done',
    host: 'web2',
    site: 'shop',
    action: 'deploy',
    ok: false,
    ref: 'main',
    failedStep: 'health check',
    durationMs: 5,
  });
  bad.emit({ type: 'run-ended', exitCode: 2, durationMs: 9, check: false, roundTrips: {} });
  await after.settled();
  t.is(readFileSync(join(dir, 'failed.txt'), 'utf8'), 'web2/shop failed\n');
});
