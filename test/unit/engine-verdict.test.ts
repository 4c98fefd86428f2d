/**
 * The verdict of one try of a run step (engine/verdict.ts): the default rule, changedWhen, failedWhen,
 * retries with and without until, and functions that throw.
 */
import test from 'ava';
import type { CommandResult } from '../../src/engine/types.js';
import { DEFAULT_DELAY, judge, maxTries } from '../../src/engine/verdict.js';

const result = (rc: number, stdout = '', stderr = ''): CommandResult => ({ rc, stdout, stderr });

test('without rules: changed when it ran, failed unless the exit code is one of okCodes', (t) => {
  t.deepEqual(judge(result(0), [0], undefined, 1, false), { next: 'done', changed: true });
  t.deepEqual(judge(result(3), [0], undefined, 1, false), {
    next: 'done',
    changed: false,
    failed: 'exit code: 3',
  });
  t.deepEqual(judge(result(3), [0, 3], undefined, 1, false), { next: 'done', changed: true });
  t.is(maxTries(undefined), 1);
});

test('changedWhen: a function of the result, or false', (t) => {
  const byStdout = { changedWhen: (r: CommandResult) => r.stdout.includes('created') };
  t.deepEqual(judge(result(0, 'created x\n'), [0], byStdout, 1, false), { next: 'done', changed: true });
  t.deepEqual(judge(result(0, 'exists\n'), [0], byStdout, 1, false), { next: 'done', changed: false });
  t.deepEqual(judge(result(0), [0], { changedWhen: false }, 1, false), { next: 'done', changed: false });
  // A failure stays a failure: changedWhen is not asked.
  const never = {
    changedWhen: () => {
      throw new Error('not asked');
    },
  };
  t.is(judge(result(1), [0], never, 1, false).next, 'done');
  t.is((judge(result(1), [0], never, 1, false) as { failed?: string }).failed, 'exit code: 1');
});

test('failedWhen replaces the exit code rule, both ways', (t) => {
  const rules = { failedWhen: (r: CommandResult) => r.rc > 1 || r.stderr.includes('FATAL') };
  t.deepEqual(judge(result(1), [0], rules, 1, false), { next: 'done', changed: true });
  t.deepEqual(judge(result(0, '', 'FATAL: no\n'), [0], rules, 1, false), {
    next: 'done',
    changed: false,
    failed: 'failedWhen is true (exit code: 0)',
  });
});

test('retries without until: again while it fails, at most retries more times', (t) => {
  const rules = { retries: 2, delay: 1 };
  t.is(maxTries(rules), 3);
  t.deepEqual(judge(result(1), [0], rules, 1, false), {
    next: 'retry',
    why: 'exit code: 1',
    delaySeconds: 1,
  });
  t.is(judge(result(1), [0], rules, 2, false).next, 'retry');
  t.deepEqual(judge(result(1), [0], rules, 3, false), {
    next: 'done',
    changed: false,
    failed: 'exit code: 1, after 3 tries',
  });
  t.deepEqual(judge(result(0), [0], rules, 2, false), { next: 'done', changed: true });
});

test('until: again while it is false; still false after the last try fails the task', (t) => {
  const rules = { retries: 1, until: (r: CommandResult) => r.stdout.trim() === 'ready' };
  t.deepEqual(judge(result(0, 'starting'), [0], rules, 1, false), {
    next: 'retry',
    why: 'exit code: 0, until is false',
    delaySeconds: DEFAULT_DELAY,
  });
  t.deepEqual(judge(result(0, 'starting'), [0], rules, 2, false), {
    next: 'done',
    changed: false,
    failed: 'until was still false after 2 tries (exit code: 0)',
  });
  t.deepEqual(judge(result(0, 'ready'), [0], rules, 2, false), { next: 'done', changed: true });
  // until true on a failing command: the last result decides, and it failed.
  t.is((judge(result(2, 'ready'), [0], rules, 1, false) as { failed?: string }).failed, 'exit code: 2');
  // until without retries: Ansible's default of 3 retries.
  t.is(maxTries({ until: () => true }), 4);
});

test('a function that throws fails the task with its message; hidden for a sensitive task', (t) => {
  const rules = {
    changedWhen: (r: CommandResult) => {
      throw new Error(`cannot parse ${r.stdout}`);
    },
  };
  t.deepEqual(judge(result(0, 'token=hunter22'), [0], rules, 1, false), {
    next: 'done',
    changed: false,
    failed: 'changedWhen threw: cannot parse token=hunter22 (exit code: 0)',
  });
  const hidden = judge(result(0, 'token=hunter22'), [0], rules, 1, true) as { failed?: string };
  t.is(hidden.failed, 'changedWhen threw an error (its message is hidden: sensitive task) (exit code: 0)');
  const until = {
    retries: 5,
    until: () => {
      throw 'not an Error';
    },
  };
  // A throw ends the tries at once.
  t.deepEqual(judge(result(0), [0], until, 1, false), {
    next: 'done',
    changed: false,
    failed: 'until threw: not an Error (exit code: 0)',
  });
});

test('only true counts: a function returning something else is false', (t) => {
  const rules = { changedWhen: (() => 'yes') as unknown as () => boolean };
  t.deepEqual(judge(result(0), [0], rules, 1, false), { next: 'done', changed: false });
});
