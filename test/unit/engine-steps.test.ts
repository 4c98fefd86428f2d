import { execFileSync } from 'node:child_process';
import {
  lstatSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  backupsIn,
  RECORD_FAILED_EXIT,
  stepScript,
  TEMP_REPLACED_EXIT,
  TRANSFER_INCOMPLETE_EXIT,
  writeScript,
} from '../../src/engine/steps.js';

function run(script: string, input = '') {
  try {
    return {
      code: 0,
      out: execFileSync('sh', ['-c', script], { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString(),
      err: '',
    };
  } catch (e) {
    const x = e as { status: number; stdout: Buffer; stderr: Buffer };
    return { code: x.status, out: x.stdout.toString(), err: x.stderr.toString() };
  }
}

test('writeScript writes atomically with the given mode and leaves no temp file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'my conf');
  const res = run(writeScript({ kind: 'write', path, content: 'hello\n', mode: '0640' }), 'hello\n');
  t.is(res.code, 0, res.err);
  t.is(readFileSync(path, 'utf8'), 'hello\n');
  t.is(statSync(path).mode & 0o777, 0o640);
  t.deepEqual(readdirSync(dir), ['my conf']);
});

test('writeScript with backup copies the old file, with its mode, to <path>.<pid>.<date@time>~ and prints its path', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'my conf');
  writeFileSync(path, 'old\n', { mode: 0o600 });
  const res = run(writeScript({ kind: 'write', path, content: 'new\n', backup: true }), 'new\n');
  t.is(res.code, 0, res.err);
  t.is(readFileSync(path, 'utf8'), 'new\n');
  const backups = backupsIn(res.out);
  t.is(backups.length, 1, res.out);
  const backup = backups[0];
  t.regex(backup.slice(path.length), /^\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$/);
  t.true(backup.startsWith(`${path}.`));
  t.is(readFileSync(backup, 'utf8'), 'old\n');
  t.is(statSync(backup).mode & 0o777, 0o600);
  t.deepEqual(readdirSync(dir).sort(), ['my conf', backup.slice(dir.length + 1)].sort());
});

test('writeScript with backup makes no copy when no file was there, nor of a link', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'conf');
  const res = run(writeScript({ kind: 'write', path, content: 'a', backup: true }), 'a');
  t.is(res.code, 0, res.err);
  t.deepEqual(backupsIn(res.out), []);
  writeFileSync(join(dir, 'target'), 'target');
  const link = join(dir, 'link');
  symlinkSync(join(dir, 'target'), link);
  const linked = run(writeScript({ kind: 'write', path: link, content: 'b', backup: true }), 'b');
  t.is(linked.code, 0, linked.err);
  t.deepEqual(backupsIn(linked.out), []);
  t.deepEqual(readdirSync(dir).sort(), ['conf', 'link', 'target']);
});

test('writeScript keeps the mode of an existing file when none is given', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  writeFileSync(path, 'old', { mode: 0o600 });
  t.is(run(writeScript({ kind: 'write', path, content: 'new' }), 'new').code, 0);
  t.is(readFileSync(path, 'utf8'), 'new');
  t.is(statSync(path).mode & 0o777, 0o600);
});

test('a failing validate leaves the old file untouched and no temp file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  writeFileSync(path, 'good');
  const res = run(writeScript({ kind: 'write', path, content: 'bad', validate: 'grep -q good %s' }), 'bad');
  t.is(res.code, 65);
  t.regex(res.err, /validation failed/);
  t.is(readFileSync(path, 'utf8'), 'good');
  t.deepEqual(readdirSync(dir), ['f']);
  t.is(
    run(writeScript({ kind: 'write', path, content: 'good 2', validate: 'grep -q good %s' }), 'good 2').code,
    0,
  );
  t.is(readFileSync(path, 'utf8'), 'good 2');
});

test('a write whose content arrives cut short installs nothing, even when validate would pass', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  writeFileSync(path, 'old');
  const content = `${'line of config\n'.repeat(1000)}end\n`;
  const marker = join(dir, 'validated');
  const step = { kind: 'write' as const, path, content, validate: `touch ${marker} && test -s %s` };
  const res = run(writeScript(step), content.slice(0, 5000));
  t.is(res.code, TRANSFER_INCOMPLETE_EXIT);
  t.regex(res.err, /transfer incomplete: received 5000 of \d+ bytes/);
  t.is(readFileSync(path, 'utf8'), 'old');
  t.deepEqual(readdirSync(dir), ['f'], 'no temporary file left, validate never ran');
});

test('a write whose content differs from what was announced (same size) installs nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  const res = run(writeScript({ kind: 'write', path, content: 'abcd' }), 'abce');
  t.is(res.code, TRANSFER_INCOMPLETE_EXIT);
  t.regex(res.err, /sha256/);
  t.deepEqual(readdirSync(dir), []);
});

test('the handler record of a write runs after validation, before the rename', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  const log = join(dir, 'log');
  // The record sees the old file still in place: it ran before the rename.
  const record = `{ test -e ${path} && echo before-rename || echo after; } > ${log}`;
  writeFileSync(path, 'old');
  t.is(run(writeScript({ kind: 'write', path, content: 'new' }, record), 'new').code, 0);
  t.is(readFileSync(log, 'utf8'), 'before-rename\n');
  t.is(readFileSync(path, 'utf8'), 'new');
  // A failing validate: no record at all.
  writeFileSync(log, '');
  const failing = run(writeScript({ kind: 'write', path, content: 'x', validate: 'false' }, record), 'x');
  t.is(failing.code, 65);
  t.is(readFileSync(log, 'utf8'), '');
});

test('a run step records before its command; a record that fails runs nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-run-'));
  const log = join(dir, 'log');
  const ok = stepScript({ kind: 'run', command: `echo command >> ${log}; exit 3` }, `echo record >> ${log}`);
  t.is(run(ok.script).code, 3);
  t.is(readFileSync(log, 'utf8'), 'record\ncommand\n');
  const bad = stepScript({ kind: 'run', command: `echo command >> ${log}` }, 'false');
  const res = run(bad.script);
  t.is(res.code, RECORD_FAILED_EXIT);
  t.regex(res.err, /could not record the notified handlers/);
  t.is(readFileSync(log, 'utf8'), 'record\ncommand\n');
});

test('a write whose handler record fails installs nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  writeFileSync(path, 'old');
  const res = run(writeScript({ kind: 'write', path, content: 'new' }, 'false && true'), 'new');
  t.is(res.code, RECORD_FAILED_EXIT);
  t.is(readFileSync(path, 'utf8'), 'old');
  t.deepEqual(readdirSync(dir), ['f']);
});

test('a write onto a symbolic link replaces the link; owner and mode never come from its target', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const target = join(dir, 'target');
  writeFileSync(target, 'theirs', { mode: 0o600 });
  execFileSync('chown', ['65534:65534', target]);
  const path = join(dir, 'conf');
  symlinkSync(target, path);
  t.is(run(writeScript({ kind: 'write', path, content: 'mine' }), 'mine').code, 0);
  const st = lstatSync(path);
  t.true(st.isFile(), 'the link is now a file');
  t.is(readFileSync(path, 'utf8'), 'mine');
  t.is(st.uid, process.getuid?.() ?? 0);
  t.is(st.mode & 0o777, 0o644);
  t.is(readFileSync(target, 'utf8'), 'theirs', 'the target is untouched');
  t.is(statSync(target).uid, 65534);
});

test('the temporary file lives in a fresh 0700 directory inside the target directory', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'app.conf');
  const seen = join(dir, 'seen');
  const validate = `stat -c '%a %n' "$(dirname %s)" > ${seen}; basename %s >> ${seen}`;
  t.is(run(writeScript({ kind: 'write', path, content: 'x', validate }), 'x').code, 0);
  const [mode, name] = readFileSync(seen, 'utf8').trim().split('\n');
  t.regex(mode, new RegExp(`^700 ${dir}/\\.verdandi-\\w{6}$`));
  t.is(name, 'app.conf', 'the temporary file keeps the name (and extension) of the target');
  t.deepEqual(readdirSync(dir).sort(), ['app.conf', 'seen']);
});

test('a temporary directory renamed and replaced during validate installs nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'app.conf');
  writeFileSync(path, 'old');
  // What another user can do in a world-writable directory without the sticky bit.
  const validate = `d=$(dirname %s); mv "$d" "$d.moved" && mkdir "$d" && echo evil > %s`;
  const res = run(writeScript({ kind: 'write', path, content: 'new', validate }), 'new');
  t.is(res.code, TEMP_REPLACED_EXIT);
  t.regex(res.err, /was replaced by another user of the host while validating; nothing installed/);
  t.is(readFileSync(path, 'utf8'), 'old');
});
