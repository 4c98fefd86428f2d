import test from 'ava';
import type { Plan, RunStep } from '../../../src/engine/types.js';
import { git } from '../../../src/tasks/git.js';
import { UserError } from '../../../src/util/errors.js';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const T = 'c'.repeat(40); // an annotated tag object
const REPO = 'https://git.example.test/team/app.git';
const G = "GIT_TERMINAL_PROMPT=0 git -c 'safe.directory=*'";

function probe(opts: {
  head?: string;
  url?: string;
  dest?: 'absent' | 'notgit';
  remote?: string[];
  remoteExit?: number;
  /** How many tracked files have local changes (the probe of `force`). */
  changed?: number;
}) {
  const lines: string[] = [];
  if (opts.dest) lines.push(`verdandi-git dest ${opts.dest}`);
  else lines.push(`verdandi-git head ${opts.head ?? ''}`, `verdandi-git url ${opts.url ?? REPO}`);
  if (opts.changed !== undefined) lines.push(`verdandi-git changed ${opts.changed}`);
  if (opts.remote) {
    lines.push(`verdandi-git remote-exit ${opts.remoteExit ?? 0}`);
    for (const r of opts.remote) lines.push(`verdandi-git remote ${r}`);
  }
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}
const commands = (plan: Plan) => plan.steps.map((s) => (s as RunStep).command);

const mainBranch = [`${A}\trefs/heads/main`];

test('HEAD already at the branch tip: converged (nothing changes when HEAD does not move)', (t) => {
  const plan = git({ repo: REPO, dest: '/srv/app', version: 'main' }).plan(
    probe({ head: A, remote: mainBranch }),
  );
  t.deepEqual(plan, { steps: [] });
});

test('HEAD moved on the remote: fetch that branch from repo, check it out by force as a local branch', (t) => {
  const plan = git({ repo: REPO, dest: '/srv/app', version: 'main' }).plan(
    probe({ head: B, remote: mainBranch }),
  );
  t.deepEqual(commands(plan), [
    `${G} -C /srv/app fetch ${REPO} refs/heads/main`,
    `${G} -C /srv/app checkout --force -B main FETCH_HEAD`,
  ]);
  t.is(plan.reason, `HEAD ${B.slice(0, 12)} → ${A.slice(0, 12)} (branch main)`);
});

test('not cloned: one clone of the branch, with depth', (t) => {
  const plan = git({ repo: REPO, dest: '/srv/app', version: 'main', depth: 1 }).plan(
    probe({ dest: 'absent', remote: mainBranch }),
  );
  t.deepEqual(commands(plan), [`${G} clone --depth=1 --branch main ${REPO} /srv/app`]);
});

test('default version: the remote HEAD branch (ls-remote --symref)', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app' });
  t.true(task.probe.includes(`git ls-remote --symref ${REPO} HEAD`));
  const remote = ['ref: refs/heads/trunk\tHEAD', `${A}\tHEAD`];
  t.deepEqual(commands(task.plan(probe({ dest: 'absent', remote }))), [
    `${G} clone --branch trunk ${REPO} /srv/app`,
  ]);
  t.deepEqual(task.plan(probe({ head: A, remote })).steps, []);
});

test('annotated tag: the peeled commit (^{}) is what HEAD is compared with', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'v1.2' });
  t.true(task.probe.includes("git ls-remote --symref https://git.example.test/team/app.git v1.2 'v1.2^{}'"));
  const remote = [`${T}\trefs/tags/v1.2`, `${A}\trefs/tags/v1.2^{}`];
  t.deepEqual(task.plan(probe({ head: A, remote })).steps, []);
  t.deepEqual(commands(task.plan(probe({ head: B, remote }))), [
    `${G} -C /srv/app fetch ${REPO} refs/tags/v1.2`,
    `${G} -C /srv/app checkout --force --detach FETCH_HEAD`,
  ]);
});

test('a branch wins over a same-named ref elsewhere (ls-remote matches ref tails)', (t) => {
  const remote = [`${B}\trefs/heads/feature/main`, `${A}\trefs/heads/main`, `${B}\trefs/remotes/origin/main`];
  t.deepEqual(
    git({ repo: REPO, dest: '/srv/app', version: 'main' }).plan(probe({ head: A, remote })).steps,
    [],
  );
});

test('full sha version: no ls-remote in the probe; fetch only when the commit is missing', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: A });
  t.false(task.probe.includes('ls-remote'));
  t.deepEqual(task.plan(probe({ head: A })).steps, []);
  t.deepEqual(commands(task.plan(probe({ head: B }))), [
    `${G} -C /srv/app cat-file -e '${A}^{commit}' 2>/dev/null || ${G} -C /srv/app fetch ${REPO} ${A}`,
    `${G} -C /srv/app checkout --force --detach ${A}`,
  ]);
  t.deepEqual(commands(task.plan(probe({ dest: 'absent' }))).slice(0, 1), [
    `${G} clone --no-checkout ${REPO} /srv/app`,
  ]);
});

test('short sha: converged when HEAD starts with it', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'aaaaaaa' });
  t.deepEqual(task.plan(probe({ head: A, remote: [] })).steps, []);
  t.deepEqual(commands(task.plan(probe({ head: B, remote: [] }))), [
    `${G} -C /srv/app fetch origin`,
    `${G} -C /srv/app checkout --force --detach aaaaaaa`,
  ]);
});

test('origin pointing elsewhere is fixed along with a HEAD move, never alone', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'main' });
  t.deepEqual(
    task.plan(probe({ head: A, url: 'https://old.example.test/app.git', remote: mainBranch })).steps,
    [],
  );
  t.deepEqual(
    commands(
      task.plan(probe({ head: B, url: 'https://old.example.test/app.git', remote: mainBranch })),
    ).slice(0, 1),
    [`${G} -C /srv/app remote set-url origin ${REPO}`],
  );
});

test('owner: every git command runs through runuser, the probe ls-remote too', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'main', owner: 'deploy' });
  t.true(
    task.probe.includes(`GIT_TERMINAL_PROMPT=0 runuser -u deploy -- git ls-remote --symref ${REPO} main`),
  );
  t.deepEqual(commands(task.plan(probe({ dest: 'absent', remote: mainBranch }))), [
    `GIT_TERMINAL_PROMPT=0 runuser -u deploy -- git -c 'safe.directory=*' clone --branch main ${REPO} /srv/app`,
  ]);
});

test('repository on the host: upload-pack told to accept another owner', (t) => {
  const task = git({ repo: '/srv/git/app.git', dest: '/srv/app', version: 'main' });
  t.true(
    task.probe.includes(
      "ls-remote --symref '--upload-pack=git -c safe.directory=* upload-pack' /srv/git/app.git",
    ),
  );
  t.deepEqual(commands(task.plan(probe({ dest: 'absent', remote: mainBranch }))), [
    `${G} clone '--upload-pack=git -c safe.directory=* upload-pack' --branch main /srv/git/app.git /srv/app`,
  ]);
});

test('unknown version: error naming it', (t) => {
  const plan = git({ repo: REPO, dest: '/srv/app', version: 'relase' }).plan(
    probe({ head: A, remote: mainBranch }),
  );
  t.regex(plan.error ?? '', /version relase is neither a branch nor a tag/);
});

test('ls-remote failure: error with git message', (t) => {
  const plan = git({ repo: REPO, dest: '/srv/app' }).plan(
    probe({ head: A, remoteExit: 128, remote: ["fatal: repository 'x' not found", '', 'advice'] }),
  );
  t.is(plan.error, "git ls-remote failed (exit code 128): fatal: repository 'x' not found advice");
});

test('dest that is not a checkout: error, nothing overwritten', (t) => {
  const plan = git({ repo: REPO, dest: '/srv/app', version: A }).plan(probe({ dest: 'notgit' }));
  t.deepEqual(plan.steps, []);
  t.regex(plan.error ?? '', /\/srv\/app exists and is not a git checkout/);
});

test('probe reads HEAD with safe.directory and only reads', (t) => {
  const { probe: text } = git({ repo: REPO, dest: '/srv/app', version: A });
  t.true(text.includes("git -c 'safe.directory=*' -C /srv/app rev-parse --verify -q HEAD"));
  t.false(/\b(clone|fetch|checkout)\b/.test(text));
});

test('validation', (t) => {
  t.throws(() => git({ repo: REPO, dest: 'relative' }), { instanceOf: UserError });
  t.throws(() => git({ repo: '--upload-pack=evil', dest: '/srv/app' }), { instanceOf: UserError });
  t.throws(() => git({ repo: REPO, dest: '/srv/app', version: '--force' }), { instanceOf: UserError });
  t.throws(() => git({ repo: REPO, dest: '/srv/app', depth: 0 }), { instanceOf: UserError });
  t.is(git({ repo: REPO, dest: '/srv/app' }).name, 'git /srv/app');
});

test('force true: local changes are discarded even when HEAD is at the target; none: converged', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'main', force: true });
  t.regex(
    task.probe,
    /git --no-optional-locks -c 'safe\.directory=\*' -C \/srv\/app status --porcelain --untracked-files=no \| wc -l/,
  );
  t.deepEqual(task.plan(probe({ head: A, remote: mainBranch, changed: 2 })), {
    steps: [{ kind: 'run', command: `${G} -C /srv/app reset -q --hard HEAD` }],
    reason: 'local changes to 2 tracked files discarded (force)',
  });
  t.deepEqual(task.plan(probe({ head: A, remote: mainBranch, changed: 0 })), { steps: [] });
  t.deepEqual(commands(task.plan(probe({ head: B, remote: mainBranch, changed: 1 }))), [
    `${G} -C /srv/app fetch ${REPO} refs/heads/main`,
    `${G} -C /srv/app checkout --force -B main FETCH_HEAD`,
  ]);
});

test('force false: a checkout with local changes is an error, whether HEAD moves or not', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'main', force: false });
  for (const head of [A, B]) {
    t.deepEqual(task.plan(probe({ head, remote: mainBranch, changed: 1 })), {
      steps: [],
      error:
        '/srv/app has local changes to 1 tracked file (force: false): commit or discard them on the host, or set force: true to discard them',
    });
  }
  t.is(commands(task.plan(probe({ head: B, remote: mainBranch, changed: 0 }))).length, 2);
  t.deepEqual(
    task.plan(probe({ dest: 'absent', remote: mainBranch })).steps.length,
    1,
    'a clone has no changes',
  );
});

test('force not given: no status in the probe, local changes not looked at', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'main' });
  t.false(task.probe.includes('status'));
  t.deepEqual(task.plan(probe({ head: A, remote: mainBranch })), { steps: [] });
});

test('update false: clones a missing checkout, never touches an existing one (even if the remote fails)', (t) => {
  const task = git({ repo: REPO, dest: '/srv/app', version: 'main', update: false, force: true });
  t.false(task.probe.includes('status'), 'changes do not matter when nothing is updated');
  t.deepEqual(task.plan(probe({ head: B, remote: mainBranch })), { steps: [] });
  t.deepEqual(task.plan(probe({ head: B, remote: ['fatal: unreachable'], remoteExit: 128 })), { steps: [] });
  t.deepEqual(commands(task.plan(probe({ dest: 'absent', remote: mainBranch }))), [
    `${G} clone --branch main ${REPO} /srv/app`,
  ]);
});
