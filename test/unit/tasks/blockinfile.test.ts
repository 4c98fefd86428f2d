import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { type BlockInFileOptions, blockinfile } from '../../../src/tasks/blockinfile.js';
import { UserError } from '../../../src/util/errors.js';
import { convergeLocally, planLocally, scratchDir } from './local-host.js';

const out = (...lines: string[]) => ({ stdout: `${lines.join('\n')}\n`, exitCode: 0 });
const b64 = (text: string) => Buffer.from(text).toString('base64');
const STAT = 'verdandi-stat file 0 root 4 adm 640 - -';
const content = (text: string) => `verdandi-text-edit content ${b64(text)}`;
const BEGIN = '# BEGIN VERDANDI MANAGED BLOCK';
const END = '# END VERDANDI MANAGED BLOCK';
const after = (options: BlockInFileOptions, before: string) =>
  blockinfile(options).plan(out(STAT, content(before))).diff?.after;

test('a missing block is appended between the default markers, keeping mode, owner and group', (t) => {
  const task = blockinfile({ path: '/etc/x', block: 'a=1\nb=2\n' });
  t.deepEqual(task.plan(out(STAT, content('top\n'))), {
    steps: [
      {
        kind: 'write',
        path: '/etc/x',
        content: `top\n${BEGIN}\na=1\nb=2\n${END}\n`,
        mode: '0640',
        owner: 'root',
        group: 'adm',
      },
    ],
    reason: 'block is missing',
    diff: { path: '/etc/x', after: `top\n${BEGIN}\na=1\nb=2\n${END}\n` },
  });
});

test('the block between the markers is replaced; the same block plans nothing', (t) => {
  const before = `top\n${BEGIN}\nold\n${END}\nbottom\n`;
  const task = blockinfile({ path: '/etc/x', block: 'new' });
  const plan = task.plan(out(STAT, content(before)));
  t.is(plan.reason, 'block differs');
  t.is(plan.diff?.after, `top\n${BEGIN}\nnew\n${END}\nbottom\n`);
  t.deepEqual(task.plan(out(STAT, content(`top\n${BEGIN}\nnew\n${END}\nbottom\n`))).steps, []);
});

test('insertAfter / insertBefore: after or before the last matching line, BOF, EOF when none matches', (t) => {
  const before = '[a]\nx\n[b]\ny\n[b]\nz\n';
  t.is(
    after({ path: '/etc/x', block: 'k', insertAfter: '^\\[b\\]' }, before),
    `[a]\nx\n[b]\ny\n[b]\n${BEGIN}\nk\n${END}\nz\n`,
  );
  t.is(
    after({ path: '/etc/x', block: 'k', insertBefore: '^\\[b\\]' }, before),
    `[a]\nx\n[b]\ny\n${BEGIN}\nk\n${END}\n[b]\nz\n`,
  );
  t.is(after({ path: '/etc/x', block: 'k', insertBefore: 'BOF' }, 'a\n'), `${BEGIN}\nk\n${END}\na\n`);
  t.is(after({ path: '/etc/x', block: 'k', insertAfter: 'EOF' }, 'a\n'), `a\n${BEGIN}\nk\n${END}\n`);
  t.is(after({ path: '/etc/x', block: 'k', insertAfter: '^nowhere' }, 'a\n'), `a\n${BEGIN}\nk\n${END}\n`);
});

test('a custom marker and mark words; two blocks with different markers live side by side', (t) => {
  const options = {
    path: '/etc/x',
    block: 'b',
    marker: '// {mark} two',
    markerBegin: 'start',
    markerEnd: 'stop',
  };
  const before = `${BEGIN}\none\n${END}\n`;
  t.is(after(options, before), `${BEGIN}\none\n${END}\n// start two\nb\n// stop two\n`);
});

test('state absent, or an empty block, removes the block and its markers; no block: nothing to do', (t) => {
  const before = `a\n${BEGIN}\nx\n${END}\nb\n`;
  const absent = blockinfile({ path: '/etc/x', state: 'absent' }).plan(out(STAT, content(before)));
  t.is(absent.reason, 'block removed');
  t.is(absent.diff?.after, 'a\nb\n');
  t.is(after({ path: '/etc/x', block: '' }, before), 'a\nb\n');
  t.deepEqual(blockinfile({ path: '/etc/x', state: 'absent' }).plan(out(STAT, content('a\n'))).steps, []);
  t.deepEqual(blockinfile({ path: '/etc/x', state: 'absent' }).plan(out('verdandi-text-edit absent')), {
    steps: [],
  });
});

test('a missing file: an error without create, with it a new 0644 file holding the block (its directories made)', (t) => {
  t.deepEqual(blockinfile({ path: '/etc/x', block: 'a' }).plan(out('verdandi-text-edit absent')), {
    steps: [],
    error: 'blockinfile /etc/x: /etc/x does not exist (set create: true to create it)',
  });
  t.deepEqual(
    blockinfile({ path: '/etc/x', block: 'a', create: true, owner: 'www' }).plan(
      out('verdandi-account user 1', 'verdandi-text-edit absent'),
    ),
    {
      steps: [
        { kind: 'run', command: 'mkdir -p /etc', description: 'create /etc' },
        { kind: 'write', path: '/etc/x', content: `${BEGIN}\na\n${END}\n`, mode: '0644', owner: 'www' },
      ],
      reason: 'file is missing',
      diff: { path: '/etc/x', after: `${BEGIN}\na\n${END}\n` },
    },
  );
});

test('options are checked when the task is built', (t) => {
  const build = (opts: BlockInFileOptions) => () => blockinfile(opts);
  t.throws(build({ path: '/etc/x', block: 'a', marker: '# managed' }), {
    instanceOf: UserError,
    message: /marker must contain \{mark\}/,
  });
  t.throws(build({ path: '/etc/x', block: 'a', insertAfter: 'a', insertBefore: 'b' }), {
    instanceOf: UserError,
    message: /at most one of insertAfter and insertBefore/,
  });
  t.throws(build({ path: '/etc/x', block: 'a', insertAfter: '(' }), {
    instanceOf: UserError,
    message: /blockinfile \/etc\/x: insertAfter is not a valid regexp/,
  });
  t.throws(build({ path: '/etc/x', block: 'a', markerBegin: 'X', markerEnd: 'X' }), {
    instanceOf: UserError,
    message: /markerBegin and markerEnd must differ/,
  });
  t.throws(build({ path: '/etc/x', block: 'a', state: 'gone' as 'absent' }), { instanceOf: UserError });
});

test('locally: inserted, converged, then replaced in place and removed', (t) => {
  const dir = scratchDir(t);
  const file = join(dir, 'sshd_config');
  writeFileSync(file, 'Port 22\nMatch User x\n', { mode: 0o600 });
  const task = blockinfile({ path: file, block: 'PasswordAuthentication no', insertBefore: '^Match' });
  const { first, second } = convergeLocally(task);
  t.is(first.reason, 'block is missing');
  t.is(readFileSync(file, 'utf8'), `Port 22\n${BEGIN}\nPasswordAuthentication no\n${END}\nMatch User x\n`);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.deepEqual(second.steps, []);

  convergeLocally(blockinfile({ path: file, block: 'X11Forwarding no', insertBefore: '^Match' }));
  t.is(readFileSync(file, 'utf8'), `Port 22\n${BEGIN}\nX11Forwarding no\n${END}\nMatch User x\n`);
  convergeLocally(blockinfile({ path: file, state: 'absent' }));
  t.is(readFileSync(file, 'utf8'), 'Port 22\nMatch User x\n');
});

test('locally: create makes a missing file', (t) => {
  const dir = scratchDir(t);
  const file = join(dir, 'new.conf');
  t.regex(planLocally(blockinfile({ path: file, block: 'a' })).error ?? '', /does not exist/);
  convergeLocally(blockinfile({ path: file, block: 'a', create: true }));
  t.is(readFileSync(file, 'utf8'), `${BEGIN}\na\n${END}\n`);
});
