/**
 * Commands that never end, print without end, or print terminal control sequences, on a real host:
 * - `timeout` stops a command with everything it started, and the task fails saying so (exit 2);
 * - the first Ctrl-C stops the command running on the host with its whole process group, within
 *   seconds: the run exits 130, is recorded interrupted, and no process of the command remains;
 * - a command printing 1 GB costs the controller a bounded amount of memory; the failure shows a
 *   tail and how much was left out, and the history and the report hold bounded text;
 * - control sequences a host prints reach the user's terminal escaped, never raw.
 */
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { interrupt, processesOnHost, startVerdandi, waitOnHost } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'te-exec';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-trust-exec-'));

function playbook(name: string, tasks: string): string {
  const path = join(dir, `${name}.ts`);
  writeFileSync(
    path,
    `import { definePlaybook, shell, command } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
${tasks}
] }] });
`,
  );
  return path;
}

const inventory = () => writeInventory(dir, { hosts: { [HOST]: hosts.get(HOST) } });

const processes = (pattern: string) => processesOnHost(hosts, HOST, pattern);
/** Waits until `path` exists on the host (the command started): a marker, not a sleep. */
const started = (path: string) => waitOnHost(hosts, HOST, `test -e ${path}`);

test.serial(
  'timeout: the command and everything it started are stopped, the task fails saying so',
  async (t) => {
    const site = playbook(
      'timeout',
      `shell({ script: 'sleep 10001 & echo $! > /root/te-timeout-child; sleep 10002', timeout: 2 }),
  shell({ script: 'touch /root/te-after-timeout' }),`,
    );
    const started = Date.now();
    const res = await runCli(['run', inventory(), site, '--host-key-checking=off'], {
      cwd: dir,
      timeoutMs: 120_000,
    });
    const took = Date.now() - started;
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(res.stdout, /timed out after 2 s: stopped with its whole process group/);
    t.true(took < 60_000, `${took} ms`);
    t.is(await processes('sleep 1000'), '', 'a process of the timed-out command remains');
    t.is(
      (await hosts.ssh(HOST, 'test -e /root/te-after-timeout')).code,
      1,
      'the run went on after the failure',
    );

    // The run's default, when the task sets none.
    const byDefault = playbook('default', `shell({ script: 'sleep 10003' }),`);
    const again = await runCli(
      ['run', inventory(), byDefault, '--host-key-checking=off', '--task-timeout', '1'],
      {
        cwd: dir,
        timeoutMs: 120_000,
      },
    );
    t.is(again.code, 2, again.stdout + again.stderr);
    t.regex(again.stdout, /timed out after 1 s/);
    t.is(await processes('sleep 1000'), '');
  },
);

test.serial(
  'the first Ctrl-C stops the command on the host within seconds: exit 130, recorded interrupted',
  async (t) => {
    await hosts.ssh(HOST, 'rm -f /root/te-started /root/te-next');
    const site = playbook(
      'forever',
      `shell({ script: 'sleep 10004 & touch /root/te-started; wait' }),
  shell({ script: 'touch /root/te-next' }),`,
    );
    const v = startVerdandi(['run', inventory(), site, '--host-key-checking=off'], { cwd: dir });
    await started('/root/te-started');
    t.not(await processes('sleep 10004'), '', 'the command runs');
    const { exitCode, output, afterSignalMs } = await interrupt(v);
    t.is(exitCode, 130, output);
    t.true(afterSignalMs < 10_000, `exited ${afterSignalMs} ms after SIGINT`);
    t.regex(output, /stopped during play 1 › shell sleep 10004 .*: its command was stopped on the host/);
    t.is(await processes('sleep 10004'), '', 'a process of the command outlived the run');
    t.is((await hosts.ssh(HOST, 'test -e /root/te-next')).code, 1, 'no new step started');
    const history = await runCli(['history', '--json', '--last', '1'], { cwd: dir });
    t.is(history.code, 0, history.stderr);
    t.regex(history.stdout, /"status": "interrupted"/);
  },
);

test.serial(
  'a command printing 1 GB: bounded controller memory, a tail with what was left out',
  async (t) => {
    const site = playbook(
      'flood',
      `shell({ script: 'yes "a line of output, again and again" | head -c 1000000000; echo last line; exit 3' }),`,
    );
    // No time limit of its own (the test's applies): the run ends by itself once the 1 GB is read.
    const v = startVerdandi(['run', inventory(), site, '--host-key-checking=off'], {
      cwd: dir,
      timeoutMs: 60 * 60_000,
    });
    // Peak resident memory of the controller, sampled until it exits (VmHWM only grows).
    let peakKb = 0;
    const sampler = setInterval(() => {
      try {
        const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${v.child.pid}/status`, 'utf8'));
        if (hwm) peakKb = Math.max(peakKb, Number(hwm[1]));
      } catch {
        /* exited */
      }
    }, 50);
    const res = await v.result;
    clearInterval(sampler);
    const output = res.stdout + res.stderr;
    // A signal would give 128 + its number: 2 is the run's own exit code.
    t.is(res.code, 2, output.slice(-3000));
    t.true(peakKb > 0, 'the sampler read the controller');
    t.log(`the controller peaked at ${Math.round(peakKb / 1024)} MB`);
    t.true(peakKb < 150 * 1024, `the controller peaked at ${Math.round(peakKb / 1024)} MB`);
    t.regex(output, /\[… 1\.0 GB not shown\]/);
    t.regex(output, /last line/);
    t.true(output.length < 20_000, `${output.length} characters printed`);
    // What the history and the report keep is as bounded.
    const last = await runCli(['history', '--json', '--last', '1'], { cwd: dir });
    t.is(last.code, 0, last.stderr);
    const [run] = (JSON.parse(last.stdout) as { runs: Array<{ id: number }> }).runs;
    const show = await runCli(['history', 'show', String(run.id), '--json'], { cwd: dir });
    t.is(show.code, 0, show.stderr);
    t.regex(show.stdout, /1\.0 GB not shown/);
    t.true(show.stdout.length < 40_000, `history show: ${show.stdout.length} characters`);
    const db = join(dir, '.verdandi', 'history.sqlite');
    t.true(statSync(db).size < 2_000_000, `history.sqlite is ${statSync(db).size} bytes`);
    const report = await runCli(['report'], { cwd: dir });
    t.is(report.code, 0, report.stderr);
    const html = readFileSync(join(dir, '.verdandi', 'report.html'), 'utf8');
    t.regex(html, /1\.0 GB not shown/);
    t.true(html.length < 2_000_000, `report.html is ${html.length} characters`);
  },
);

test.serial('control sequences printed by a host are shown escaped, never raw', async (t) => {
  const site = playbook(
    'escapes',
    `shell({ script: 'printf "\\\\033]0;pwned\\\\007\\\\033[2Jcleared\\\\n" >&2; exit 1' }),`,
  );
  const res = await runCli(['run', inventory(), site, '--host-key-checking=off'], { cwd: dir });
  t.is(res.code, 2, res.stdout + res.stderr);
  const all = res.stdout + res.stderr;
  t.true(all.includes('\\x1b]0;pwned\\x07\\x1b[2Jcleared'), all);
  t.false(all.includes('\u001b]0;pwned'), 'a raw escape sequence reached the terminal');
  t.false(all.includes('\u0007'), 'a raw BEL reached the terminal');
});
