/**
 * The history from the command line, on this machine (an inventory with `connection: local`, a task
 * that only touches a temporary folder): a run stopped with Ctrl-C is recorded as interrupted, with
 * exit code 130.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { CLI_BIN, runCli, writeInventory } from '../helpers/cli.js';

test('a run stopped by Ctrl-C is recorded as interrupted (exit 130)', async (t) => {
  t.timeout(3 * 60_000);
  const project = mkdtempSync(join(tmpdir(), 'vd-history-int-'));
  writeInventory(project, { hosts: { here: { connection: 'local' } } }, 'dev');
  const marker = join(project, 'started');
  writeFileSync(
    join(project, 'slow.ts'),
    `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [shell({ script: 'touch ${marker}; sleep 5' })] }] });
`,
  );
  const child = spawn(process.execPath, [CLI_BIN, 'run', 'dev', 'slow.ts'], {
    cwd: project,
    env: { ...process.env, CI: 'true' },
    stdio: 'ignore',
  });
  const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 120_000;
  while (!existsSync(marker) && Date.now() < deadline) await sleep(50);
  t.true(existsSync(marker), 'the task started');
  child.kill('SIGINT');
  t.is(await closed, 130);
  const list = await runCli(['history', '--json'], { cwd: project });
  t.is(list.code, 0, list.stderr);
  const [run] = JSON.parse(list.stdout).runs;
  t.deepEqual([run.command, run.status, run.exitCode], ['run', 'interrupted', 130]);
});
