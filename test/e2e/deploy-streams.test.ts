/**
 * Large transfers stream: a 200 MB repository deployed, a 200 MB dump downloaded with `backup
 * --download` and restored with `restore`, while the controller's peak memory (VmHWM of the verdandi
 * process, sampled from /proc while it runs) stays under 150 MB. The data is random, so neither git nor
 * pg_dump can make it smaller.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readdirSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import test from 'ava';
import { removeProject, writeInventory } from '../helpers/cli.js';
import { type RunningCli, startVerdandi } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';
import {
  httpGet,
  makeRepo,
  onFirstUse,
  provisionOrThrow,
  staticPythonSite,
  webInventory,
} from './deploy-helpers.js';

const HOST = 'dep-streams';
const hosts = useTestHosts(test, [HOST]);
const MB = 1024 * 1024;
const LIMIT_KB = 150 * 1024;
let dir = '';
let inventory = '';
let sha = '';

const ssh = (command: string, timeoutMs = 120_000) => hosts.ssh(HOST, command, { timeoutMs });

/** Runs verdandi; returns its result and the peak of its resident memory (kB), read from /proc. */
async function measured(args: string[]): Promise<{ code: number; out: string; peakKb: number }> {
  const v: RunningCli = startVerdandi(args, { timeoutMs: 15 * 60_000 });
  let peakKb = 0;
  const sample = async () => {
    try {
      const status = await readFile(`/proc/${v.child.pid}/status`, 'utf8');
      const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      peakKb = Math.max(peakKb, kb);
    } catch {
      // ended
    }
  };
  const timer = setInterval(sample, 50);
  const res = await v.result;
  clearInterval(timer);
  return { code: res.code, out: res.stdout + res.stderr, peakKb };
}

async function randomFile(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path);
  const { randomBytes } = await import('node:crypto');
  async function* chunks() {
    for (let left = bytes; left > 0; left -= MB) yield randomBytes(Math.min(MB, left));
  }
  await pipeline(chunks, out);
}

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

const ready = onFirstUse(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vd-deploy-streams-'));
  const repo = join(dir, 'web');
  sha = await makeRepo(repo, {
    'index.html': 'big\n',
    'big.bin': (path) => randomFile(path, 200 * MB),
  });
  const vars = { postgres_databases: [{ name: 'big' }], sites: [staticPythonSite(repo)] };
  const roles = ['nginx', 'supervisor', 'sites', 'postgres'];
  inventory = writeInventory(dir, webInventory(hosts.get(HOST), roles, vars), 'deploy-streams');
  await provisionOrThrow(inventory, { timeoutMs: 20 * 60_000 });
}, 30);

test.after.always(async () => {
  if (dir) removeProject(dir);
});

test.serial('a 200 MB repository is deployed with the controller under 150 MB', async (t) => {
  await ready(t);
  const res = await measured(['deploy', inventory, '--branch', 'main']);
  t.is(res.code, 0, res.out);
  t.regex(res.out, /send commits +ok \(\d{6,} KiB bundle\)/);
  t.is((await httpGet(`http://${hosts.get(HOST).address}/REVISION`)).body.trim(), sha);
  t.log(`deploy peak memory: ${Math.round(res.peakKb / 1024)} MB`);
  t.true(res.peakKb > 0);
  t.true(res.peakKb < LIMIT_KB, `peak ${res.peakKb} kB`);
});

test.serial('a 200 MB dump is downloaded and restored with the controller under 150 MB', async (t) => {
  await ready(t);
  // 200 MB of random bytes as a large object of the database: pg_dump -Fc cannot compress them.
  const fill = await ssh(
    "head -c 200M /dev/urandom > /tmp/big.bin && chmod 644 /tmp/big.bin && sha256sum /tmp/big.bin | cut -d' ' -f1 && runuser -u postgres -- psql -q -d big -tAc \"select lo_import('/tmp/big.bin', 4242)\" && rm /tmp/big.bin",
    300_000,
  );
  t.is(fill.code, 0, fill.stderr);
  const original = fill.stdout.split('\n')[0].trim();

  const downloads = join(dir, 'downloads');
  const backup = await measured(['backup', inventory, '--download', downloads]);
  t.is(backup.code, 0, backup.out);
  const files = readdirSync(join(downloads, HOST));
  t.is(files.length, 1, files.join(', '));
  const dump = join(downloads, HOST, files[0]);
  const onHost = (
    await ssh(`sha256sum /var/backups/postgresql/big/${files[0]} | cut -d' ' -f1`)
  ).stdout.trim();
  t.is(await sha256(dump), onHost);
  t.log(`backup --download peak memory: ${Math.round(backup.peakKb / 1024)} MB`);
  t.true(backup.peakKb > 0 && backup.peakKb < LIMIT_KB, `peak ${backup.peakKb} kB`);

  // Empty the database, then restore the downloaded dump into it.
  t.is((await ssh("runuser -u postgres -- psql -q -d big -c 'select lo_unlink(4242)'")).code, 0);
  const restore = await measured(['restore', inventory, '--db', 'big', '--from', dump, '--yes']);
  t.is(restore.code, 0, restore.out);
  const back = await ssh(
    "runuser -u postgres -- psql -q -d big -tAc \"select lo_export(4242, '/tmp/back.bin')\" && sha256sum /tmp/back.bin | cut -d' ' -f1 && rm /tmp/back.bin",
    300_000,
  );
  t.is(back.code, 0, back.stderr);
  t.is(back.stdout.split('\n').at(-2)?.trim(), original);
  t.log(`restore peak memory: ${Math.round(restore.peakKb / 1024)} MB`);
  t.true(restore.peakKb > 0 && restore.peakKb < LIMIT_KB, `peak ${restore.peakKb} kB`);
});
