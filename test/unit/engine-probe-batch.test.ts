import { execFileSync, spawnSync } from 'node:child_process';
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

/** Runs a script in a process group of its own (setsid), so that it can kill itself whole (`kill -9 -$$`). */
function runKillable(script: string, env: NodeJS.ProcessEnv = process.env): string {
  const res = spawnSync('setsid', ['-w', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env });
  return res.stdout.toString();
}

test('probe stderr is dropped and a batch whose shell dies leaves its unfinished ids missing', (t) => {
  const probes: BatchProbe[] = [
    ['a', 'echo out; echo err >&2'],
    ['b', 'kill -9 -$$'],
    ['c', 'echo never'],
  ];
  // Side by side, the frames are printed once all have run: a shell killed whole prints none.
  const batch = buildProbeBatch(probes);
  t.is(parseProbeBatch(runKillable(batch.script), batch).size, 0);
  // One after the other (no temporary directory), the frames before the death stand.
  const serial = runKillable(batch.script, { ...process.env, TMPDIR: '/nonexistent/verdandi' });
  const res = parseProbeBatch(serial, batch);
  t.deepEqual(res.get('a'), { stdout: 'out\n', exitCode: 0 });
  t.false(res.has('b'));
  t.false(res.has('c'));
});

test('the probes of a batch run side by side, and print what they print one after the other', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'verdandi lanes '));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const flag = join(dir, 'flag');
  // Probe 0 waits (at most 5 s) for the file probe 1 creates: one after the other, it would not see it.
  const probes: BatchProbe[] = [
    [
      '0',
      `i=0; while [ ! -e '${flag}' ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done; [ -e '${flag}' ] && echo saw it`,
    ],
    ['1', `touch '${flag}'; echo made it`],
    ...Array.from(
      { length: 7 },
      (_, i): BatchProbe => [String(i + 2), `printf 'probe %s' ${i + 2}; exit ${i}`],
    ),
  ];
  const batch = buildProbeBatch(probes, 'fixednonce12');
  const sideBySide = execFileSync('sh', { input: batch.script }).toString();
  const res = parseProbeBatch(sideBySide, batch);
  t.deepEqual(res.get('0'), { stdout: 'saw it\n', exitCode: 0 });
  t.deepEqual(res.get('1'), { stdout: 'made it\n', exitCode: 0 });
  for (let i = 2; i < 9; i++) t.deepEqual(res.get(String(i)), { stdout: `probe ${i}`, exitCode: i - 2 });
  // Without a temporary directory the same frames run one after the other: the same bytes, in the
  // same order (probe 0 now waits in vain: the flag exists already, so it sees it at once).
  const oneByOne = execFileSync('sh', {
    input: batch.script,
    env: { ...process.env, TMPDIR: '/nonexistent/verdandi' },
  }).toString();
  t.is(oneByOne, sideBySide);
  // The private directory is gone.
  t.notRegex(execFileSync('sh', ['-c', `ls -a "\${TMPDIR:-/tmp}"`]).toString(), /fixednonce12/);
});

test("a batch's lanes are waited for, not the background jobs of the script around it", (t) => {
  const batch = buildProbeBatch([
    ['0', 'echo a'],
    ['1', 'echo b'],
  ]);
  const out = execFileSync('sh', {
    input: `sleep 5 & vd_bg=$!\n${batch.script}\nif kill -0 "$vd_bg"; then echo still sleeping; kill "$vd_bg"; fi`,
  }).toString();
  t.is(parseProbeBatch(out, batch).size, 2);
  t.regex(out, /still sleeping\n$/);
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
  const cut = batch.script.replace('QUOTING_STYLE=literal stat', () => 'kill -9 -$$; stat');
  t.is(parseProbeBatch(runKillable(cut), batch).size, 0);
  t.is(parseProbeBatch(runKillable(cut, { ...process.env, TMPDIR: '/nonexistent/verdandi' }), batch).size, 0);
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
