import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  type BatchProbe,
  buildProbeBatch,
  parseProbeBatch,
  predictBatchOutput,
} from '../../src/engine/probe-batch.js';

test('a batch frames each probe and keeps its exit code', (t) => {
  const batch = buildProbeBatch([
    ['0', 'echo hello'],
    ['1', 'printf "no newline"; exit 3'],
    ['2', 'echo "@@vd-fake-end-2 0"; echo line2'],
    ['3', 'cat'],
    ['4', ''],
  ]);
  const out = execFileSync('sh', ['-c', batch.script], { input: 'stdin must not reach probes' }).toString();
  const res = parseProbeBatch(out, batch);
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
  const res = parseProbeBatch(out, batch);
  t.deepEqual(res.get('a'), { stdout: 'out\n', exitCode: 0 });
  t.false(res.has('c'));
});

test('the files of every probe are read once for the batch and each id gets the states of its own', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi batch '));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, 'a file');
  const b = join(dir, '-b\nodd');
  writeFileSync(a, 'A');
  const batch = buildProbeBatch([
    ['0', '', [{ path: a, checksum: true }]],
    ['1', 'echo own', [{ path: b }, { path: a }]],
    ['2', 'echo none'],
  ]);
  // One stat for the batch; a probe that only needs files runs no subshell of its own.
  t.is(batch.script.match(/\bstat\b/g)?.length, 1);
  t.is(batch.script.match(/^\( /gm)?.length, 3, 'the files, probes 1 and 2');
  const res = parseProbeBatch(execFileSync('sh', { input: batch.script }).toString(), batch);
  t.deepEqual([...res.keys()].sort(), ['0', '1', '2']);
  t.deepEqual(res.get('0')?.stdout, '');
  t.like(res.get('0')?.files?.get(a), {
    type: 'file',
    sha256: createHash('sha256').update('A').digest('hex'),
  });
  t.deepEqual([...(res.get('0')?.files?.keys() ?? [])], [a]);
  t.is(res.get('1')?.stdout, 'own\n');
  t.deepEqual(res.get('1')?.files?.get(b), { type: 'absent' });
  t.like(res.get('1')?.files?.get(a), { type: 'file' });
  t.is(res.get('2')?.files, undefined);
});

test('a shell that dies while reading the files leaves every id missing', (t) => {
  const batch = buildProbeBatch([['0', '', [{ path: '/' }]]]);
  const cut = batch.script.replace('QUOTING_STYLE=literal stat', () => 'kill -9 $$; stat');
  let out = '';
  try {
    out = execFileSync('sh', { input: cut, stdio: ['pipe', 'pipe', 'ignore'] }).toString();
  } catch (err) {
    out = (err as { stdout: Buffer }).stdout.toString();
  }
  t.is(parseProbeBatch(out, batch).size, 0);
});

test('file states cut off inside the frame give the ids no files: their plans say so', (t) => {
  const batch = buildProbeBatch([['0', 'echo probed', [{ path: '/' }]]]);
  // stat killed before its records end: its frame completes, without the end of the records.
  const cut = batch.script.replace('QUOTING_STYLE=literal stat', 'printf "/\\0" ; exit 9; stat');
  const res = parseProbeBatch(execFileSync('sh', { input: cut }).toString(), batch);
  t.is(res.get('0')?.stdout, 'probed\n');
  t.is(res.get('0')?.files, undefined);
});

test('what a subset of a batch prints again is predicted byte for byte from the first results, until a file moves', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi predict '));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const a = join(dir, 'a file');
  const b = join(dir, 'b\\odd');
  const link = join(dir, 'link');
  const missing = join(dir, 'missing');
  writeFileSync(a, 'A');
  writeFileSync(b, 'B');
  symlinkSync(a, link);
  const probes: Array<[string, string, { path: string; checksum?: boolean }[]?]> = [
    ['0', '', [{ path: a, checksum: true }]],
    ['1', 'echo own; exit 3', [{ path: b, checksum: true }, { path: link }, { path: missing }]],
    ['2', 'printf "no newline"'],
    ['3', ''],
    ['h0_0', 'echo handler', [{ path: a }]],
  ];
  const batch = buildProbeBatch(probes);
  const results = parseProbeBatch(execFileSync('sh', { input: batch.script }).toString(), batch);
  for (const ids of [['1', '2', '3', 'h0_0'], ['0', '1'], ['2'], ['h0_0']]) {
    const again = buildProbeBatch(probes.filter(([id]) => ids.includes(id)));
    const predicted = predictBatchOutput(again, results);
    t.is(predicted, execFileSync('sh', { input: again.script }).toString(), ids.join(','));
  }
  // A file that moved: the same subset now prints something else than predicted.
  writeFileSync(b, 'changed');
  const again = buildProbeBatch(probes.filter(([id]) => id === '1'));
  t.not(predictBatchOutput(again, results), execFileSync('sh', { input: again.script }).toString());
  // Nothing to predict from: a result that is not there.
  t.is(predictBatchOutput(buildProbeBatch([['9', 'true']]), results), undefined);
});

test('a probe word for word the same as an earlier one runs once, and both ids get its result', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi same '));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const runs = join(dir, 'runs');
  const service = `echo ran >> '${runs}'; echo active; exit 3`;
  const probes: BatchProbe[] = [
    ['0', service],
    ['1', 'echo other'],
    ['h0_0', service, [{ path: dir }]],
  ];
  const batch = buildProbeBatch(probes);
  t.deepEqual([...batch.sameAs], [['h0_0', '0']]);
  const results = parseProbeBatch(execFileSync('sh', { input: batch.script }).toString(), batch);
  t.is(execFileSync('cat', [runs]).toString(), 'ran\n', 'the shared probe ran once');
  t.deepEqual(results.get('0'), { stdout: 'active\n', exitCode: 3 });
  t.like(results.get('h0_0'), { stdout: 'active\n', exitCode: 3 });
  t.like(results.get('h0_0')?.files?.get(dir), { type: 'dir' });
  // A subset printed again is still predicted byte for byte, with or without the first of the pair.
  for (const ids of [['h0_0'], ['0', 'h0_0'], ['1', 'h0_0']]) {
    const again = buildProbeBatch(probes.filter(([id]) => ids.includes(id)));
    t.is(
      predictBatchOutput(again, results),
      execFileSync('sh', { input: again.script }).toString(),
      ids.join(','),
    );
  }
});
