/**
 * The team variant of the run history: a PostgreSQL server on the test host `hist-pg` (Debian's
 * postgresql, listening on its address, a role and a database for the history), used from this
 * machine over 10.231.x.2 through VERDANDI_HISTORY_URL. Same schema and migrations as SQLite; two
 * processes recording at once both land; a real run is recorded and listed; the URL's password never
 * shows.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LATEST_VERSION } from '../../src/history/schema.js';
import { HistoryStore } from '../../src/history/store.js';
import { runCli, writeInventory } from '../helpers/cli.js';
import { recordConcurrently, sampleRun } from '../helpers/history.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'hist-pg';
const hosts = useTestHosts(test, [HOST]);
const PASSWORD = 'Hist-PG-pa55-4e1b';

const SETUP = [
  'set -e',
  'export DEBIAN_FRONTEND=noninteractive',
  'command -v pg_ctlcluster >/dev/null || { apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; }',
  'conf=$(ls /etc/postgresql/*/main/postgresql.conf)',
  'dir=$(dirname "$conf")',
  `echo "listen_addresses = '*'" > "$dir/conf.d/history.conf"`,
  'echo "host history hist 10.231.0.0/16 scram-sha-256" >> "$dir/pg_hba.conf"',
  'systemctl restart postgresql',
  `su postgres -c "psql -q -c \\"CREATE ROLE hist LOGIN PASSWORD '${PASSWORD}'\\""`,
  'su postgres -c "createdb -O hist history"',
].join('\n');

let url = '';
let setup: Promise<void> | undefined;
const ready = () => {
  setup ??= (async () => {
    const res = await hosts.ssh(HOST, SETUP, { timeoutMs: 15 * 60_000 });
    if (res.code !== 0) throw new Error(`postgres setup failed: ${res.stderr}`);
    url = `postgres://hist:${PASSWORD}@${hosts.get(HOST).address}/history`;
  })();
  return setup;
};

const pg = () => ({ kind: 'postgres' as const, url });

test.serial('a run round-trips through PostgreSQL with the same schema version', async (t) => {
  t.timeout(20 * 60_000);
  await ready();
  const store = await HistoryStore.open(pg());
  t.is(await store.version(), LATEST_VERSION);
  const run = sampleRun();
  const id = await store.record(run);
  t.deepEqual(await store.get(id), { ...run, id });
  t.deepEqual(
    (await store.list({ host: 'web1', status: 'failed' })).map((r) => r.id),
    [id],
  );
  await store.close();
  // Opened again: nothing migrated twice.
  const again = await HistoryStore.open(pg());
  t.is(await again.version(), LATEST_VERSION);
  await again.close();
});

test.serial('two processes recording at the same time both land', async (t) => {
  t.timeout(20 * 60_000);
  await ready();
  for (const r of await recordConcurrently(url, 10, ['PA', 'PB'])) t.is(r.code, 0, r.out);
  const store = await HistoryStore.open(pg());
  const runs = await store.list();
  await store.close();
  for (const tag of ['PA', 'PB']) {
    t.is(new Set(runs.filter((r) => r.argv.includes(`# ${tag} `)).map((r) => r.argv)).size, 10);
  }
});

test.serial('a real run recorded in PostgreSQL, listed by the CLI; the password never shows', async (t) => {
  t.timeout(20 * 60_000);
  await ready();
  const project = mkdtempSync(join(tmpdir(), 'vd-history-pg-run-'));
  const h = hosts.get(HOST);
  writeInventory(project, { hosts: { pgweb: { address: h.address, user: h.user, key: h.key } } }, 'team');
  writeFileSync(
    join(project, 'site.ts'),
    `import { copy, definePlaybook } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [copy({ path: '/etc/hist-pg.txt', content: 'team\\n' })] }] });
`,
  );
  // The project's config names the database; the environment variable wins over it.
  writeFileSync(join(project, 'verdandi.yml'), `history:\n  url: ${url}\n`);
  const run = await runCli(['run', 'team', 'site.ts', '--host-key-checking=off'], { cwd: project });
  t.is(run.code, 0, run.stderr);
  const list = await runCli(['history', 'team', '--json'], { cwd: project });
  t.is(list.code, 0, list.stderr);
  const [latest] = JSON.parse(list.stdout).runs;
  t.deepEqual(
    [latest.command, latest.env, latest.status, latest.hostNames],
    ['run', 'team', 'changed', ['pgweb']],
  );
  // A wrong password: a clear error naming the URL without its password.
  const bad = await runCli(['history'], {
    cwd: project,
    env: { VERDANDI_HISTORY_URL: url.replace(PASSWORD, 'wrong-pass-123') },
  });
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^error: cannot open the run history: /);
  for (const out of [run.stdout, run.stderr, list.stdout, bad.stderr]) t.false(out.includes(PASSWORD));
});
