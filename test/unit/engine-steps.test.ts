import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  clearPendingScript,
  parsePending,
  recordPendingScript,
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
  const res = run(writeScript({ kind: 'write', path, content: '', mode: '0640' }), 'hello\n');
  t.is(res.code, 0, res.err);
  t.is(readFileSync(path, 'utf8'), 'hello\n');
  t.is(statSync(path).mode & 0o777, 0o640);
  t.deepEqual(readdirSync(dir), ['my conf']);
});

test('writeScript keeps the mode of an existing file when none is given', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  writeFileSync(path, 'old', { mode: 0o600 });
  t.is(run(writeScript({ kind: 'write', path, content: '' }), 'new').code, 0);
  t.is(readFileSync(path, 'utf8'), 'new');
  t.is(statSync(path).mode & 0o777, 0o600);
});

test('a failing validate leaves the old file untouched and no temp file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-write-'));
  const path = join(dir, 'f');
  writeFileSync(path, 'good');
  const res = run(writeScript({ kind: 'write', path, content: '', validate: 'grep -q good %s' }), 'bad');
  t.is(res.code, 65);
  t.regex(res.err, /validation failed/);
  t.is(readFileSync(path, 'utf8'), 'good');
  t.deepEqual(readdirSync(dir), ['f']);
  t.is(run(writeScript({ kind: 'write', path, content: '', validate: 'grep -q good %s' }), 'good 2').code, 0);
  t.is(readFileSync(path, 'utf8'), 'good 2');
});

test('pending handler records round-trip through a file', (t) => {
  const lines = recordPendingScript('nginx', ['reload nginx', 'restart x']);
  t.true(lines.includes('/var/lib/verdandi/pending-handlers'));
  t.deepEqual(parsePending('nginx\treload nginx\nother\tfoo\nnginx\treload nginx\n', 'nginx'), [
    'reload nginx',
  ]);
  t.true(clearPendingScript('nginx', 'reload nginx').includes('grep -vxF'));
});
