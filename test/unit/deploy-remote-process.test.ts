/**
 * Supervised remote commands, run here with the machine's own /bin/sh (dash on Debian, as on the hosts):
 * the command gets its stdin and keeps its exit code; stopping it stops its whole process group, what it
 * started in the background included; the holder of the lock stops the groups a dead run left behind.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { LocalConnection } from '../../src/connection/local.js';
import { stopLeftoversScript, stopScript, supervised } from '../../src/engine/remote-process.js';

const conn = new LocalConnection('here');

async function runDir() {
  const dir = await mkdtemp(join(tmpdir(), 'vd-steps-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

const alive = async (pid: string) => (await conn.exec(`kill -0 ${pid}`)).code === 0;

async function waitForFile(path: string): Promise<string> {
  const res = await conn.exec(
    `i=0; while [ ! -s '${path}' ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; cat '${path}'`,
  );
  return res.stdout.trim();
}

test('a supervised command reads its stdin and keeps its exit code; never in the process list; its files go when it ends', async (t) => {
  const { dir, cleanup } = await runDir();
  t.teardown(cleanup);
  const marker = 'vd-not-in-argv-4711';
  const res = await conn.exec(
    supervised(`cat; ps -eo args | grep -c ${marker} | grep -qx 1 || echo SEEN; exit 7`, 'a1', dir),
    { stdin: 'payload' },
  );
  t.is(res.stdout, 'payload');
  t.is(res.code, 7);
  t.is((await conn.exec(`ls '${dir}'`)).stdout, '');
});

test('stopping a supervised command stops its whole process group, background children too', async (t) => {
  const { dir, cleanup } = await runDir();
  t.teardown(cleanup);
  const pids = join(dir, 'children');
  const running = conn.exec(supervised(`sh -c 'sleep 300 & echo $! > ${pids}; sleep 301'`, 'b1', dir));
  const child = await waitForFile(pids);
  t.true(await alive(child));
  await conn.exec(stopScript('b1', 2, dir));
  const res = await running;
  t.not(res.code, 0);
  t.false(await alive(child));
});

test('the lock holder stops every group a dead run left behind, and says which', async (t) => {
  const { dir, cleanup } = await runDir();
  t.teardown(cleanup);
  const pids = join(dir, 'children');
  // The run that started it is gone: only its pid file is left.
  void conn.exec(supervised(`sh -c 'sleep 302 & echo $! > ${pids}; wait'`, 'c1', dir)).catch(() => undefined);
  const child = await waitForFile(pids);
  const res = await conn.exec(stopLeftoversScript(2, dir));
  t.regex(res.stdout, /^\d+ sh -c 'sleep 302/m);
  t.false(await alive(child));
  t.is((await conn.exec(`ls '${dir}'/*.pid 2>/dev/null`)).stdout, '');
});
