/**
 * `verdandi db` on a real test host with the postgres role: one statement without a terminal (its
 * result printed, psql's exit code carried), an interactive psql through a real terminal (tmux) as the
 * postgres user, nothing left on the host after; bad inputs end with a clear message and exit 1.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { Terminal } from './day2-terminal.js';
import { onFirstUse, provisionOrThrow } from './deploy-helpers.js';

const hosts = useTestHosts(test, ['dco-db']);
const dir = mkdtempSync(join(tmpdir(), 'vd-dco-db-'));
let inventory = '';
let noPostgres = '';
const ssh = (cmd: string) => hosts.ssh('dco-db', cmd);
const terminals: Terminal[] = [];

const ready = onFirstUse(async (log) => {
  const host = hosts.get('dco-db');
  const inv = {
    hosts: {
      'dco-db': { address: host.address, user: 'root', key: host.key },
      // In the inventory, without the postgres role (never contacted).
      'dco-web': { address: '10.231.250.3', user: 'root' },
    },
    groups: {
      db: {
        hosts: ['dco-db'],
        roles: ['postgres'],
        vars: {
          postgres_users: [{ name: 'app' }],
          postgres_databases: [{ name: 'appdb', owner: 'app' }],
        },
      },
    },
  };
  inventory = writeInventory(dir, inv, 'dco-db');
  noPostgres = writeInventory(
    dir,
    { hosts: { 'dco-web': { address: '10.231.250.3', user: 'root' } }, groups: {} },
    'dco-nopg',
  );
  await provisionOrThrow(inventory, { log, args: ['--limit', 'dco-db'] });
  const table = await ssh(
    `runuser -u postgres -- psql -d appdb -c "create table visits (n int); insert into visits values (40), (2); alter table visits owner to app"`,
  );
  if (table.code !== 0) throw new Error(`table: ${table.stderr}`);
});

test.after.always(async () => {
  for (const term of terminals) await term.close();
});

test.serial('one statement without a terminal: the result printed, exit 0', async (t) => {
  await ready(t);
  const res = await runCli([
    'db',
    inventory,
    '--db',
    'appdb',
    '--',
    '-tAc',
    'select sum(n), current_user from visits',
  ]);
  t.is(res.code, 0, res.stdout + res.stderr);
  t.is(res.stdout, '42|postgres\n');
  t.regex(res.stderr, /db: psql on dco-db, database appdb/);
});

test.serial("a failing statement: psql's exit code and its error", async (t) => {
  await ready(t);
  const res = await runCli(['db', inventory, '--db', 'appdb', '--', '-c', 'select * from nosuch']);
  t.is(res.code, 1, res.stdout + res.stderr);
  t.regex(res.stderr, /relation "nosuch" does not exist/);
});

test.serial('interactive psql through a terminal, as postgres; nothing left after \\q', async (t) => {
  await ready(t);
  const term = await Terminal.start(`dco-db-${process.pid}`, ['db', inventory, '--db', 'appdb']);
  terminals.push(term);
  await term.waitFor(/appdb=#/, 'the psql prompt');
  await term.type('select current_user as who, sum(n) * 100 as total from visits;');
  const row = await term.waitFor(/(\w+)\s+\|\s+(4200)/, 'the result row');
  t.is(row[1], 'postgres');
  // Ctrl-C goes to psql (it cancels the query), not to Verdandi: psql goes on.
  await term.type('select pg_sleep(4242);');
  await waitForRemote('pg_sleep', true);
  await term.keys('C-c');
  await term.waitFor(/canceling statement due to user request/, 'the cancel');
  await term.type('select 6 * 7 as answer;');
  await term.waitFor(/\b42\b/, 'psql after Ctrl-C');
  await term.type('\\q');
  t.is(await term.exitCode(), 0);
  t.is((await ssh('pgrep -x psql')).code, 1, 'no psql left on the host');
  t.is((await ssh('ls -d /tmp/verdandi-console.* 2>/dev/null | wc -l')).stdout.trim(), '0');
});

async function waitForRemote(pattern: string, running: boolean): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    // A backend's process title is not its query: pg_stat_activity has it.
    const sql = `select count(*) from pg_stat_activity where query like '%${pattern}(%' and pid <> pg_backend_pid()`;
    const found = (await ssh(`runuser -u postgres -- psql -tAc "${sql}"`)).stdout.trim() !== '0';
    if (found === running) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${pattern} ${running ? 'never started' : 'still runs'} on the host`);
}

test.serial(
  'bad inputs: no terminal, --host not of the role or unknown, bad --db, no postgres host',
  async (t) => {
    await ready(t);
    const noTty = await runCli(['db', inventory, '--db', 'appdb']);
    t.is(noTty.code, 1);
    t.regex(noTty.stderr, /verdandi db needs a terminal/);

    const notPg = await runCli(['db', inventory, '--host', 'dco-web', '--', '-c', 'select 1']);
    t.is(notPg.code, 1);
    t.regex(notPg.stderr, /--host dco-web: not a host of the postgres role/);
    t.regex(notPg.stderr, /the hosts of the postgres role: dco-db/);

    const unknown = await runCli(['db', inventory, '--host', 'db9', '--', '-c', 'select 1']);
    t.is(unknown.code, 1);
    t.regex(unknown.stderr, /--host db9: no such host in the inventory/);

    const badDb = await runCli(['db', inventory, '--db', 'app;db', '--', '-c', 'select 1']);
    t.is(badDb.code, 1);
    t.regex(badDb.stderr, /--db "app;db" is not a database name/);

    const none = await runCli(['db', noPostgres, '--', '-c', 'select 1']);
    t.is(none.code, 1);
    t.regex(none.stderr, /no host of .* has the postgres role/);
  },
);
