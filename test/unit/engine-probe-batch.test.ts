import { execFileSync } from 'node:child_process';
import test from 'ava';
import { buildProbeBatch, parseProbeBatch } from '../../src/engine/probe-batch.js';

test('a batch frames each probe and keeps its exit code', (t) => {
  const batch = buildProbeBatch([
    ['0', 'echo hello'],
    ['1', 'printf "no newline"; exit 3'],
    ['2', 'echo "@@vd-fake-end-2 0"; echo line2'],
    ['3', 'cat'],
    ['4', ''],
  ]);
  const out = execFileSync('sh', ['-c', batch.script], { input: 'stdin must not reach probes' }).toString();
  const res = parseProbeBatch(out, batch.nonce);
  t.deepEqual(res.get('0'), { stdout: 'hello\n', exitCode: 0 });
  t.deepEqual(res.get('1'), { stdout: 'no newline', exitCode: 3 });
  t.deepEqual(res.get('2'), { stdout: '@@vd-fake-end-2 0\nline2\n', exitCode: 0 });
  t.deepEqual(res.get('3'), { stdout: '', exitCode: 0 });
  t.deepEqual(res.get('4'), { stdout: '', exitCode: 0 });
});

test('probe stderr is dropped and a dead shell leaves later ids missing', (t) => {
  const batch = buildProbeBatch([
    ['a', 'echo out; echo err >&2'],
    ['b', 'kill -9 $$'],
    ['c', 'echo never'],
  ]);
  let out = '';
  try {
    out = execFileSync('sh', ['-c', batch.script], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    out = (err as { stdout: Buffer }).stdout.toString();
  }
  const res = parseProbeBatch(out, batch.nonce);
  t.deepEqual(res.get('a'), { stdout: 'out\n', exitCode: 0 });
  t.false(res.has('c'));
});
