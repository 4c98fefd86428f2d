/**
 * `verdandi backup` / `verdandi restore` input errors, without a host: they are refused before any
 * connection, with a message that says what to do. (The real backup and restore run in
 * test/e2e/roles-postgres.test.ts.)
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject, runCli, writeInventory } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'vd-backup-cli-'));
test.after.always(() => removeProject(dir));
const inventory = writeInventory(dir, {
  hosts: { db1: { address: '10.231.254.2' }, web1: { address: '10.231.254.3' } },
  groups: { db: { hosts: ['db1'], roles: ['postgres'] }, web: { hosts: ['web1'], roles: [] } },
});

test('both commands are registered with their options', async (t) => {
  const backup = await runCli(['backup', '--help']);
  t.is(backup.code, 0);
  t.regex(backup.stdout, /--download <dir>/);
  const restore = await runCli(['restore', '--help']);
  t.is(restore.code, 0);
  t.regex(restore.stdout, /--db <name>/);
  t.regex(restore.stdout, /--from <file>/);
  t.regex(restore.stdout, /--yes/);
});

test('restore refuses a missing file and a file that is not a pg_dump -Fc dump', async (t) => {
  const missing = await runCli([
    'restore',
    inventory,
    '--db',
    'app',
    '--from',
    join(dir, 'nope.dump'),
    '--yes',
  ]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no such file on this machine/);
  const text = join(dir, 'plain.sql');
  writeFileSync(text, 'select 1;\n');
  const notDump = await runCli(['restore', inventory, '--db', 'app', '--from', text, '--yes']);
  t.is(notDump.code, 1);
  t.regex(notDump.stderr, /not a pg_dump custom-format file/);
});

test('a database name that is not a plain name is refused', async (t) => {
  const r = await runCli(['backup', inventory, '--db', "app'; drop table x; --"]);
  t.is(r.code, 1);
  t.regex(r.stderr, /not a database name/);
});

test('hosts without the postgres role are not backed up', async (t) => {
  const r = await runCli(['backup', inventory, '--limit', 'web1']);
  t.is(r.code, 1);
  t.regex(r.stderr, /no host .* has the postgres role/);
});
