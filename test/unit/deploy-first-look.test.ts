/**
 * `deploy --if-changed` in one round trip: the walker's lock script (host-lock.ts lockedScript) and the
 * deploy's first look (first-look.ts), both run here by a real `sh` on local directories: the lock in a
 * temporary directory, a site's bare repository and releases in another, `runuser` replaced by a stub
 * that runs the command as the current user. What the tests read back is what the deploy decides from.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  type FirstLookScript,
  firstLookScript,
  firstLooks,
  lookVerdict,
  type SiteWant,
} from '../../src/deploy/first-look.js';
import { type SiteInput, siteSchema } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import {
  LOCK_HELD,
  lockedScript,
  lockFileContent,
  newLockInfo,
  OPENING_DONE,
  parseLocked,
} from '../../src/engine/host-lock.js';

interface Ran {
  code: number;
  stdout: string;
}

/** Runs `script` with `sh -c`, `stdin` on its standard input, `bin` first in its PATH. */
function runSh(script: string, stdin = '', bin?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const env = bin ? { ...process.env, PATH: `${bin}:${process.env.PATH}` } : process.env;
    const child = spawn('sh', ['-c', script], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.on('error', reject);
    // A script that does not read its input may end before it is written.
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout }));
    child.stdin.end(stdin);
  });
}

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `vd-first-look-${name}-`));

// ---------------------------------------------------------------------------------------------------
// The lock's script

function lockSetup(opening: string, o: { breakLock?: boolean } = {}) {
  const root = tmp('lock');
  const dir = join(root, 'deploy.lock');
  const runDir = join(root, 'steps');
  mkdirSync(runDir);
  const info = newLockInfo('alice@laptop', 'deploy staging');
  const script = lockedScript({
    token: info.token,
    nonce: 'n0nce',
    opening,
    acquire: true,
    breakLock: o.breakLock,
    dir,
    runDir,
  });
  return { dir, info, run: () => runSh(script, lockFileContent(info)) };
}

function holdLock(dir: string): void {
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'info'),
    lockFileContent(newLockInfo('bob@desk', 'deploy prod')).replace(/Token: .*/, 'Token: bobs'),
  );
}

const lockHeld = async (dir: string) => (await runSh(`test -d '${dir}'`)).code === 0;

test('lock script: a free lock is taken, the opening runs, and OPENING_DONE releases it in the same script', async (t) => {
  const { dir, run } = lockSetup(`echo looked; exit ${OPENING_DONE}`);
  const res = await run();
  t.is(res.code, 0);
  const out = parseLocked(res.stdout, 'n0nce');
  t.is(out.lock?.exitCode, 0);
  t.is(out.leftovers, '');
  t.deepEqual(out.opening, { stdout: 'looked\n', exitCode: OPENING_DONE });
  t.true(out.released);
  t.false(await lockHeld(dir), 'the lock is free once the script ends');
});

test('lock script: an opening that needs more keeps the lock, with this run as its holder', async (t) => {
  const { dir, info, run } = lockSetup('echo changed; exit 0');
  const out = parseLocked((await run()).stdout, 'n0nce');
  t.is(out.lock?.exitCode, 0);
  t.deepEqual(out.opening, { stdout: 'changed\n', exitCode: 0 });
  t.false(out.released);
  const file = readFileSync(join(dir, 'info'), 'utf8');
  t.regex(file, new RegExp(`^Token: ${info.token}$`, 'm'));
  t.regex(file, /^Locked by: alice@laptop$/m);
});

test('lock script: a lock held by another ends the script with its holder, the opening never runs', async (t) => {
  const { dir, run } = lockSetup(`echo looked; exit ${OPENING_DONE}`);
  holdLock(dir);
  const res = await run();
  t.is(res.code, LOCK_HELD);
  const out = parseLocked(res.stdout, 'n0nce');
  t.is(out.lock?.exitCode, LOCK_HELD);
  t.regex(out.lock?.stdout ?? '', /^Locked by: bob@desk$/m);
  t.regex(out.lock?.stdout ?? '', /^Idle: \d+$/m);
  t.is(out.opening, undefined);
  t.false(out.released);
  t.regex(readFileSync(join(dir, 'info'), 'utf8'), /^Token: bobs$/m, "the holder's lock is untouched");
});

test('lock script: --break-lock removes the holder (said), then takes the lock', async (t) => {
  const { dir, info, run } = lockSetup('exit 0', { breakLock: true });
  holdLock(dir);
  const out = parseLocked((await run()).stdout, 'n0nce');
  t.regex(out.broken ?? '', /^Locked by: bob@desk$/m);
  t.is(out.lock?.exitCode, 0);
  t.regex(readFileSync(join(dir, 'info'), 'utf8'), new RegExp(`^Token: ${info.token}$`, 'm'));
});

// ---------------------------------------------------------------------------------------------------
// The deploy's first look

const git = async (cwd: string, ...args: string[]) => {
  const res = await runSh(`cd '${cwd}' && git ${args.map((a) => `'${a}'`).join(' ')}`);
  if (res.code !== 0) throw new Error(`git ${args.join(' ')} failed`);
  return res.stdout.trim();
};

interface Host {
  root: string;
  bin: string;
  upstream: string;
  sha: { a: string; b: string; missing: string };
}

/**
 * A "host" in a directory: the upstream repository (main = A, feature = B), a site `app` provisioned
 * from it (its bare repository has A and B, not the later commit `missing`) with A live.
 */
async function makeHost(): Promise<Host> {
  const root = tmp('site');
  const bin = join(root, 'bin');
  mkdirSync(bin);
  // runuser -u <user> -- <command...>: the command, as the current user.
  writeFileSync(join(bin, 'runuser'), '#!/bin/sh\nshift 3\nexec "$@"\n', { mode: 0o755 });
  const upstream = join(root, 'upstream');
  mkdirSync(upstream);
  const env = '-c user.name=t -c user.email=t@t';
  await runSh(
    `cd '${upstream}' && git init -q -b main && git ${env} commit -q --allow-empty -m A && git branch feature && git checkout -q feature && git ${env} commit -q --allow-empty -m B && git checkout -q main`,
  );
  const a = await git(upstream, 'rev-parse', 'main');
  const b = await git(upstream, 'rev-parse', 'feature');
  const site = join(root, 'srv', 'app');
  mkdirSync(join(site, 'releases', '20261122T034507Z-a'), { recursive: true });
  await runSh(`git clone -q --bare '${upstream}' '${join(site, 'repo.git')}'`);
  await runSh(`cd '${upstream}' && git ${env} commit -q --allow-empty -m C`);
  const missing = await git(upstream, 'rev-parse', 'main');
  await git(upstream, 'reset', '-q', '--hard', a);
  writeFileSync(
    join(site, 'releases', '20261122T034507Z-a', '.verdandi-release.json'),
    `${JSON.stringify({ release: '20261122T034507Z-a', site: 'app', commit: a, branch: 'main', time: 'now', by: 'alice' })}\n`,
  );
  symlinkSync('releases/20261122T034507Z-a', join(site, 'current'));
  return { root, bin, upstream, sha: { a, b, missing } };
}

let host: Promise<Host> | undefined;
const ready = () => {
  host ??= makeHost();
  return host;
};

function want(h: Host, over: Partial<SiteInput> & { ref?: string; pushed?: string } = {}): SiteWant {
  const { ref, pushed, ...input } = over;
  const site = siteSchema.parse({ name: 'app', repo: h.upstream, process: { command: 'true' }, ...input });
  return { site, paths: sitePaths(site, join(h.root, 'srv')), ref: ref ?? 'main', pushed };
}

async function look(
  h: Host,
  sites: SiteWant[],
): Promise<{ code: number; script: FirstLookScript; stdout: string }> {
  const script = firstLookScript(sites);
  const res = await runSh(script.script, '', h.bin);
  return { code: res.code, script, stdout: res.stdout };
}

const verdicts = (stdout: string, script: FirstLookScript) => {
  const looks = firstLooks(stdout, script);
  return script.sites.map((w) => {
    const l = looks.get(w.site.name);
    return l && lookVerdict(l);
  });
};

test('first look, push: the live release runs the commit → unchanged, OPENING_DONE (the lock goes)', async (t) => {
  const h = await ready();
  const { code, script, stdout } = await look(h, [want(h, { pushed: h.sha.a })]);
  t.is(code, OPENING_DONE);
  const looks = firstLooks(stdout, script);
  t.is(looks.get('app')?.state.current, '20261122T034507Z-a');
  t.deepEqual(verdicts(stdout, script), [{ kind: 'unchanged', commit: h.sha.a }]);
});

test('first look, push: another commit the host has → a deploy, the lock kept', async (t) => {
  const h = await ready();
  const { code, script, stdout } = await look(h, [want(h, { pushed: h.sha.b })]);
  t.is(code, 0);
  t.deepEqual(verdicts(stdout, script), [{ kind: 'deploy', commit: h.sha.b, hostLacks: false }]);
});

test('first look, push: a commit the host lacks → its commits are to be sent, the lock kept', async (t) => {
  const h = await ready();
  const { code, script, stdout } = await look(h, [want(h, { pushed: h.sha.missing })]);
  t.is(code, 0);
  t.deepEqual(verdicts(stdout, script), [{ kind: 'deploy', commit: h.sha.missing, hostLacks: true }]);
});

test('first look, pull: the host fetches and resolves the ref; the live commit → unchanged', async (t) => {
  const h = await ready();
  const { code, script, stdout } = await look(h, [want(h, { fetch: 'pull', ref: 'main' })]);
  t.is(code, OPENING_DONE);
  t.deepEqual(verdicts(stdout, script), [{ kind: 'unchanged', commit: h.sha.a }]);
  const changed = await look(h, [want(h, { fetch: 'pull', ref: 'feature' })]);
  t.is(changed.code, 0);
  t.deepEqual(verdicts(changed.stdout, changed.script), [
    { kind: 'deploy', commit: h.sha.b, hostLacks: false },
  ]);
});

test('first look, pull: a ref the repository lacks, and a fetch that fails, each keep the lock', async (t) => {
  const h = await ready();
  const unknown = await look(h, [want(h, { fetch: 'pull', ref: 'no-such-branch' })]);
  t.is(unknown.code, 0);
  t.deepEqual(verdicts(unknown.stdout, unknown.script), [{ kind: 'unknown-ref' }]);
  const failed = await look(h, [want(h, { fetch: 'pull', repo: join(h.root, 'no-such-repo') })]);
  t.is(failed.code, 0);
  const [v] = verdicts(failed.stdout, failed.script);
  t.is(v?.kind, 'fetch-failed');
  t.regex(
    v?.kind === 'fetch-failed' ? v.output : '',
    /no-such-repo/,
    "the fetch's error, for the failure report",
  );
});

test('first look: a site not provisioned keeps the lock; with several sites, any change keeps it', async (t) => {
  const h = await ready();
  const other = want(h, { name: 'other', pushed: h.sha.a });
  const res = await look(h, [want(h, { pushed: h.sha.a }), other]);
  t.is(res.code, 0);
  t.deepEqual(verdicts(res.stdout, res.script), [
    { kind: 'unchanged', commit: h.sha.a },
    { kind: 'not-provisioned' },
  ]);
  const two = await look(h, [want(h, { pushed: h.sha.a }), want(h, { pushed: h.sha.b })]);
  t.is(two.code, 0);
});

test('first look: a script cut short gives no look for the sites it did not finish', async (t) => {
  const h = await ready();
  const res = await look(h, [want(h, { pushed: h.sha.a }), want(h, { name: 'other', pushed: h.sha.a })]);
  const cut = res.stdout.slice(0, res.stdout.indexOf('-begin-state-1'));
  const looks = firstLooks(cut, res.script);
  t.true(looks.has('app'));
  t.false(looks.has('other'));
  t.is(firstLooks('', res.script).size, 0);
});
