/**
 * Each site's deploy history: what a deploy writes into the site's log reaches the run history too;
 * the logs read back from a host parse (a partial line skipped, old rollbacks named by their log's
 * place); the report merges both, an entry in both listed once, a colleague's deploy (host only) and
 * one whose host was not read (here only) each once; `report --hosts` needs the environment.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { DeployOutput } from '../../src/deploy/output.js';
import { deployLogScript, parseDeployLogs } from '../../src/deploy/records.js';
import { listenToRuns, RunEvents } from '../../src/engine/events.js';
import { Recorder } from '../../src/history/recorder.js';
import { HistoryStore } from '../../src/history/store.js';
import { mergeDeploys } from '../../src/report/data.js';
import { runCli } from '../helpers/cli.js';

const mine = {
  action: 'deploy' as const,
  site: 'shop',
  release: '20260301-101500-abc1234',
  time: '2026-03-01T10:15:00.000Z',
  by: 'ann@laptop',
  outcome: 'deployed',
  commit: 'abc1234abc1234abc1234abc1234abc1234abc12',
  branch: 'main',
};

test('a deploy’s log entries are recorded with its run and listed newest first', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vd-deploys-'));
  const rec = new Recorder({
    command: 'deploy',
    env: 'prod',
    args: ['deploy', 'prod'],
    projectDir: dir,
    verdandiVersion: 't',
  });
  const stop = listenToRuns(rec.handle);
  const out = new DeployOutput(new RunEvents(), { verbose: false });
  out.step('web1', 'shop', 'health check', 'ok (0.2 s)');
  out.logged('web1', mine);
  out.logged('web2', { ...mine, outcome: 'failed', step: 'health check' });
  stop();
  const store = await HistoryStore.open({ kind: 'sqlite', file: join(dir, 'h.sqlite') });
  const id = await store.record(await rec.toRecord({ exitCode: 2 }));
  const run = await store.get(id);
  t.deepEqual(
    run?.deploys.map((d) => [d.host, d.site, d.release, d.outcome, d.step, d.commit]),
    [
      ['web1', 'shop', mine.release, 'deployed', null, mine.commit],
      ['web2', 'shop', mine.release, 'failed', 'health check', mine.commit],
    ],
  );
  const listed = await store.deploys({ env: 'prod', last: 10 });
  t.deepEqual(
    listed.map((d) => [d.runId, d.env, d.host]),
    [
      [id, 'prod', 'web2'],
      [id, 'prod', 'web1'],
    ],
  );
  t.deepEqual(await store.deploys({ env: 'other', last: 10 }), []);
  await store.close();
});

test('the hosts’ logs read back: every site, a partial line skipped, a rollback named by its log', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vd-deploy-logs-'));
  mkdirSync(join(root, 'shop'));
  writeFileSync(
    join(root, 'shop', 'deploys.log'),
    [
      JSON.stringify(mine),
      // A rollback written before entries named their site.
      JSON.stringify({
        action: 'rollback',
        release: 'r1',
        from: mine.release,
        time: 't2',
        by: 'bob@pc',
        outcome: 'rolled back',
      }),
      '{"action":"deploy","rel', // cut short by a full disk
      '',
    ].join('\n'),
  );
  // `blog` was never deployed: no log, no entry, no error.
  const script = deployLogScript([
    { site: 'shop', file: join(root, 'shop', 'deploys.log') },
    { site: 'blog', file: join(root, 'blog', 'deploys.log') },
  ]);
  const entries = parseDeployLogs('web1', execFileSync('sh', ['-c', script], { encoding: 'utf8' }));
  t.deepEqual(
    entries.map((e) => [e.host, e.site, e.action, e.release, e.by, e.outcome, e.from]),
    [
      ['web1', 'shop', 'deploy', mine.release, 'ann@laptop', 'deployed', undefined],
      ['web1', 'shop', 'rollback', 'r1', 'bob@pc', 'rolled back', mine.release],
    ],
  );
});

test('merged: an entry in both once, a colleague’s deploy from the host, a host not read noted', (t) => {
  const recorded = (host: string) => ({ ...mine, host, step: null, from: null, runId: 7, env: 'prod' });
  const local = [recorded('web1'), recorded('web2')];
  const colleague = {
    ...mine,
    host: 'web1',
    release: '20260302-090000-def5678',
    time: '2026-03-02T09:00:00.000Z',
    by: 'bob@desktop',
  };
  const merged = mergeDeploys(local, {
    entries: [{ ...mine, host: 'web1' }, colleague],
    notes: ['web2: not read (unreachable: timeout)'],
  });
  t.deepEqual(
    merged.rows.map((r) => [r[1], r[3], r[6], r[11], r[12]]),
    [
      ['web1', colleague.release, 'bob@desktop', 0, 'host'],
      ['web1', mine.release, 'ann@laptop', 7, 'both'],
      ['web2', mine.release, 'ann@laptop', 7, 'here'],
    ],
  );
  t.true(merged.hostsRead);
  t.deepEqual(merged.notes, ['web2: not read (unreachable: timeout)']);
  const only = mergeDeploys(local);
  t.false(only.hostsRead);
  t.deepEqual(
    only.rows.map((r) => r[12]),
    ['here', 'here'],
  );
});

test('report --hosts without --env: exit 1 before anything is read or written, saying what to add', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'vd-report-hosts-'));
  const res = await runCli(['report', '--hosts'], { cwd: project });
  t.is(res.code, 1);
  t.is(
    res.stderr,
    'error: --hosts reads the deploy logs of one environment: name it with --env\n  → e.g. verdandi report --env staging --hosts\n',
  );
  t.false(existsSync(join(project, '.verdandi', 'report.html')));
});
