/**
 * `verdandi maintenance on|off` on a python site (the bundled sample, provisioned and deployed as in
 * deploy-python): nginx answers 503 with the message, status shows it and since when, on twice is one
 * change, a deploy that migrates leaves it on, off gives the site back.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { demoInventory, makeSampleRepo } from '../../src/commands/demo.js';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';
import { commitBranch, getFresh } from './deploy-helpers.js';

const HOST = 'dlg-maint';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-dlg-maint-'));
const repo = join(dir, 'sample-site');
const FLAG = '/etc/nginx/maintenance/sample.on';
let inventory = '';
let base = '';

const cli = (...args: string[]) => runCli(args, { timeoutMs: 20 * 60_000 });
const ssh = (cmd: string) => hosts.ssh(HOST, cmd);

let setup: Promise<void> | undefined;
const ready = (t: ExecutionContext) => {
  t.timeout(25 * 60_000);
  setup ??= provisionOnce();
  return setup;
};

async function provisionOnce(): Promise<void> {
  const host = hosts.get(HOST);
  base = `http://${host.address}`;
  await makeSampleRepo(repo);
  // A branch with a new migration: its deploy runs under maintenance (on, migrate, off).
  await commitBranch(repo, 'main', 'migrating', {
    'migrations/0002_notes.sql': 'CREATE TABLE IF NOT EXISTS notes (id integer);\n',
  });
  const inv = demoInventory({ name: HOST, address: host.address, key: host.key }, repo);
  inv.groups.web.vars.sites[0].health = { path: '/health', status: 200, timeout: 15 };
  inventory = writeInventory(dir, inv, HOST);
  const res = await cli('provision', inventory);
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  const dep = await cli('deploy', inventory, '--branch', 'main');
  if (dep.code !== 0) throw new Error(`deploy failed (${dep.code}):\n${dep.stdout}\n${dep.stderr}`);
}

test.serial('on --message: 503 with the escaped message through nginx; status says since when', async (t) => {
  await ready(t);
  t.is((await getFresh(`${base}/health`)).status, 200);
  const res = await cli(
    'maintenance',
    'on',
    inventory,
    'sample',
    '--message',
    'Back at 14:00 <b>& "soon"</b>',
  );
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /maintenance on\s+changed \(on since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)/);
  const page = await getFresh(`${base}/`);
  t.is(page.status, 503);
  t.true(page.body.includes('Back at 14:00 &#60;b&#62;&#38; &#34;soon&#34;&#60;/b&#62;'), page.body);
  t.false(page.body.includes('<b>'));
  const flag = (await ssh(`cat ${FLAG}`)).stdout;
  t.regex(flag, /^by-hand=yes\nsince=\S+Z\nby=\S+\n$/);
  const status = await cli('status', inventory);
  t.regex(status.stdout, /MAINTENANCE ON since \d{4}-\d\d-\d\dT\S+Z \(by hand, by \S+\)/);
  const json = await cli('status', inventory, '--json');
  const doc = JSON.parse(json.stdout);
  t.is(doc.sites[0].maintenance, true);
  t.regex(doc.sites[0].maintenanceByHand.since, /Z$/);
});

test.serial('on twice is one change: the second is unchanged, the time kept', async (t) => {
  await ready(t);
  const before = (await ssh(`cat ${FLAG}; md5sum /var/www/maintenance/sample.html`)).stdout;
  const res = await cli(
    'maintenance',
    'on',
    inventory,
    'sample',
    '--message',
    'Back at 14:00 <b>& "soon"</b>',
  );
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /maintenance on\s+unchanged/);
  t.is((await ssh(`cat ${FLAG}; md5sum /var/www/maintenance/sample.html`)).stdout, before);
  const json = await cli(
    'maintenance',
    'on',
    inventory,
    'sample',
    '--message',
    'Back at 14:00 <b>& "soon"</b>',
    '--json',
  );
  t.is(json.code, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  t.like(doc.maintenance[0], { host: HOST, site: 'sample', state: 'on', changed: false });
  // Under the deploy lock, like a deploy.
  t.true(doc.events.some((e: { type: string; state?: string }) => e.type === 'lock' && e.state === 'taken'));
});

test.serial('a deploy that migrates leaves a maintenance switched on by hand on', async (t) => {
  await ready(t);
  const res = await cli('deploy', inventory, '--branch', 'migrating');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /pending migrations\?\s+yes/);
  t.is((await ssh(`test -f ${FLAG} && echo on`)).stdout.trim(), 'on');
  t.is((await getFresh(`${base}/`)).status, 503);
  // The new release is live behind the page: the migration ran.
  t.is((await ssh(`sudo -u postgres psql -tAc "select to_regclass('notes')" sample`)).stdout.trim(), 'notes');
});

test.serial('off gives the site back (200), removes the message page; off twice is unchanged', async (t) => {
  await ready(t);
  const res = await cli('maintenance', 'off', inventory, 'sample');
  t.is(res.code, 0, res.stdout + res.stderr);
  t.regex(res.stdout, /maintenance off\s+changed/);
  t.is((await getFresh(`${base}/health`)).status, 200);
  t.is(
    (await ssh(`ls ${FLAG} /var/www/maintenance/sample.html 2>&1 | grep -c 'No such'`)).stdout.trim(),
    '2',
  );
  const status = await cli('status', inventory);
  t.false(status.stdout.includes('MAINTENANCE'));
  const again = await cli('maintenance', 'off', inventory, 'sample');
  t.is(again.code, 0);
  t.regex(again.stdout, /maintenance off\s+unchanged/);
});

test.serial('bad input: unknown site, on|off misspelt, --message with off: exit 1, said', async (t) => {
  await ready(t);
  const unknown = await cli('maintenance', 'on', inventory, 'nope');
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /has a site named "nope"[\s\S]*known sites: sample/);
  const bad = await cli('maintenance', 'maybe', inventory, 'sample');
  t.is(bad.code, 1);
  t.regex(bad.stderr, /maintenance takes on or off, got "maybe"/);
  const msg = await cli('maintenance', 'off', inventory, 'sample', '--message', 'x');
  t.is(msg.code, 1);
  t.regex(msg.stderr, /--message goes with maintenance on/);
  t.false(unknown.stderr.includes('    at '), 'no stack trace');
});
