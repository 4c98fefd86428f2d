import test from 'ava';
import {
  cutLine,
  filtered,
  followScript,
  formatLogLine,
  journalScript,
  LineSplitter,
  parseLogLine,
  parseLogsOptions,
} from '../../src/deploy/logs.js';
import { docker } from '../../src/deploy/runtimes/docker.js';
import { python } from '../../src/deploy/runtimes/python.js';
import { swarmLogsScript } from '../../src/deploy/runtimes/swarm.js';
import type { Site } from '../../src/deploy/site.js';
import { sitePaths } from '../../src/deploy/site-base.js';
import { UserError } from '../../src/util/errors.js';

test('parseLogsOptions: --tail, --since in seconds, --grep checked', (t) => {
  t.deepEqual(parseLogsOptions({}), { query: { tail: 100, follow: false, sinceSeconds: undefined } });
  t.deepEqual(parseLogsOptions({ tail: '5', since: '10m', grep: 'a|b', follow: true }), {
    query: { tail: 5, follow: true, sinceSeconds: 600 },
    grep: 'a|b',
  });
  t.is(parseLogsOptions({ since: '2d' }).query.sinceSeconds, 172800);
  for (const bad of [
    { tail: 'x' },
    { tail: '-1' },
    { since: '10' },
    { since: '0m' },
    { since: '1w' },
    { grep: '(' },
    { grep: '' },
  ]) {
    const err = t.throws(() => parseLogsOptions(bad), { instanceOf: UserError });
    t.is((err as UserError).exitCode ?? 1, 1);
  }
});

test('LineSplitter: whole lines across chunks, a runaway line cut with a marker, the last line flushed', (t) => {
  const lines: string[] = [];
  const s = new LineSplitter((raw, full) => lines.push(cutLine(parseLogLine('h', raw), raw, full).line), 10);
  s.push('blue | ab');
  s.push('c\nblue | de');
  s.push(`${'x'.repeat(30)}\nlast`);
  s.flush();
  t.deepEqual(lines, ['abc', 'dex … [line cut: 32 characters]', 'last']);
});

test('log lines: host and source prefixed, control characters escaped', (t) => {
  const l = parseLogLine('web1', 'blue | hi \x1b[2J there | x');
  t.deepEqual(l, { host: 'web1', source: 'blue', line: 'hi \x1b[2J there | x' });
  t.is(formatLogLine(l), 'web1 blue | hi \\x1b[2J there | x');
  t.is(formatLogLine(parseLogLine('web1', 'no source')), 'web1 | no source');
});

test('followScript: the reader in its own group, stopped when the channel input ends', (t) => {
  const s = followScript('tail -F /x');
  t.regex(s, /setsid sh -c 'tail -F \/x' <\/dev\/null &/);
  t.regex(s, /\( cat >\/dev\/null; kill -TERM "-\$vd_pid" 2>\/dev\/null \) <&3/);
  t.regex(filtered('a', 'x|y'), /\| grep --line-buffered -E -e 'x\|y'$/);
  t.is(filtered('a', undefined), 'a');
});

test('journalScript: the roles units present, --since relative, following', (t) => {
  const s = journalScript({ tail: 20, follow: true, sinceSeconds: 600 });
  t.regex(s, /for vd_u in nginx postgresql mariadb supervisor docker/);
  t.regex(s, /journalctl --no-pager --output short-iso --lines 20 --since -600s --follow \$vd_units/);
});

const base = {
  name: 'app',
  repo: 'git@example.invalid:app.git',
  branch: 'main',
  process: { port: 8000, workers: [{ name: 'mail', command: 'x' }], stopTimeout: 5 },
};

test('runtimes: supervisor files of both colors and workers; docker logs per color; swarm service logs', (t) => {
  const py = { ...base, runtime: { type: 'python' } } as unknown as Site;
  const paths = sitePaths(py, '/srv');
  const s = python.logsScript(py as never, paths, { tail: 5, follow: true }) as string;
  t.regex(s, /tail -n 5 -F \/srv\/app\/shared\/log\/blue\.log/);
  t.regex(s, /tail -n 5 -F \/srv\/app\/shared\/log\/green\.log/);
  t.regex(s, /worker-mail\.log 2>\/dev\/null 2>&1 \| sed -u 's\/\^\/worker-mail \| \/'/);
  t.deepEqual(python.logsScript(py as never, paths, { tail: 5, follow: false, sinceSeconds: 60 }), {
    refused: "the logs of python site app are supervisor's files of the program's output, without times",
  });
  const dk = { ...base, runtime: { type: 'docker' } } as unknown as Site;
  const d = docker.logsScript(dk as never, sitePaths(dk, '/srv'), {
    tail: 5,
    follow: true,
    sinceSeconds: 60,
  });
  t.regex(
    d as string,
    /docker logs --tail 5 --since 60s --follow app-blue 2>&1 \| sed -u 's\/\^\/blue \| \/'/,
  );
  const sw = swarmLogsScript({ ...base, runtime: { type: 'swarm' } } as never, { tail: 10, follow: false });
  t.regex(sw, /docker stack services --format '\{\{\.Name\}\}' app/);
  t.regex(sw, /docker service logs --no-task-ids --tail 10 "\$vd_svc"/);
  t.regex(sw, /Swarm\.ControlAvailable/);
});
