/**
 * A lost host is that host's failure only (issue "runs that survive faults"): three test hosts receive a
 * 5 MB `copy` with `validate` and `notify` over links slowed to 4 Mbit/s; one host's packets are dropped
 * mid-transfer. The two healthy hosts end with the whole new file and their handler run; the lost one is
 * reported unreachable with the step it was in, within the keepalive bound, and keeps its old file (its
 * stuck session, when it finally ends, installs nothing); the recap prints, exit 3, no stack trace. The
 * next run converges all three.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import {
  dropPackets,
  killSshSessions,
  sha256On,
  slowLink,
  startVerdandi,
  waitOnHost,
} from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const NAMES = ['faults-b', 'faults-c', 'faults-d'] as const;
const LOST = 'faults-d';
const hosts = useTestHosts(test, NAMES);
const dir = mkdtempSync(join(tmpdir(), 'vd-faults-hosts-'));
const FILE = '/srv/faults/big.conf';
const HANDLER_LOG = '/srv/faults/handler.log';
/** A temporary file of a write in progress (in its .verdandi-XXXXXX directory), with some content already. */
const TRANSFER_STARTED = `find /srv/faults -path '*/.verdandi-*/*' -size +200k | grep -q .`;
const NO_TEMP_FILES = `! find /srv/faults -name '.verdandi-*' | grep -q .`;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function site(name: string, text: string): string {
  const contentFile = join(dir, `${name}.txt`);
  writeFileSync(contentFile, text);
  const file = join(dir, `${name}.ts`);
  writeFileSync(
    file,
    `import { readFileSync } from 'node:fs';
import { definePlaybook, copy, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  copy({ path: '${FILE}', content: readFileSync(${JSON.stringify(contentFile)}, 'utf8'), validate: 'test -s %s', notify: 'note' }),
], handlers: { note: () => shell({ script: 'sha256sum ${FILE} | cut -d" " -f1 >> ${HANDLER_LOG}' }) } }] });
`,
  );
  return file;
}

test.serial(
  'packets dropped for one host of three: the others finish whole, exit 3, the recap prints',
  async (t) => {
    const inventory = writeInventory(dir, { hosts: Object.fromEntries(NAMES.map((n) => [n, hosts.get(n)])) });
    const args = (file: string) => ['run', inventory, file, '--host-key-checking=off'];
    await Promise.all(NAMES.map((n) => hosts.ssh(n, 'mkdir -p /srv/faults')));
    const first = await runCli(args(site('old', 'old content\n')), { cwd: dir });
    t.is(first.code, 0, first.stdout + first.stderr);
    const old = sha256('old content\n');

    const line = 'option = "some configuration value that is long enough to fill a line";\n';
    const text = line.repeat(Math.ceil(5_000_000 / line.length));
    const wanted = sha256(text);
    const newSite = site('new', text);
    for (const n of NAMES) t.teardown(await slowLink(hosts.get(n)));
    const run = startVerdandi(args(newSite), { cwd: dir });
    await waitOnHost(hosts, LOST, TRANSFER_STARTED);
    const undrop = await dropPackets(hosts.get(LOST));
    t.teardown(undrop);
    const droppedAt = Date.now();
    let lostAfter = 0;
    const watch = setInterval(() => {
      if (!lostAfter && run.stdout.includes(`unreachable ${LOST}`)) lostAfter = Date.now() - droppedAt;
    }, 50);
    const res = await run.result;
    clearInterval(watch);
    if (!lostAfter && res.stdout.includes(`unreachable ${LOST}`)) lostAfter = Date.now() - droppedAt;

    t.is(res.code, 3, res.stdout + res.stderr);
    t.regex(
      res.stdout,
      /unreachable faults-d +lost: lost connection: no answer to keepalives .*\(during play 1 › copy \/srv\/faults\/big\.conf\)/,
    );
    t.true(lostAfter > 0 && lostAfter < 25_000, `the lost host was declared after ${lostAfter} ms`);
    for (const n of ['faults-b', 'faults-c']) {
      t.regex(res.stdout, new RegExp(`changed +${n} +play 1 › copy`));
      t.regex(res.stdout, new RegExp(`changed +${n} +play 1 › handler: note`));
    }
    t.regex(res.stdout, /host +ok +changed +failed +ignored +skipped +unreachable/);
    t.regex(res.stdout, /faults-d +0 +0 +0 +0 +0 +yes/);
    const output = res.stdout + res.stderr;
    t.false(/\n\s+at .+:\d+:\d+\)?\n/.test(output), output);
    t.false(/internal error|Emitted 'error' event|EPIPE/.test(output), output);

    // The healthy hosts: the whole new file, and the handler ran on it.
    for (const n of ['faults-b', 'faults-c']) {
      t.is(await sha256On(hosts, n, FILE), wanted, n);
      t.is((await hosts.ssh(n, `tail -n 1 ${HANDLER_LOG}`)).stdout.trim(), wanted, n);
    }

    // The lost host, once reachable again: its old file. Its session is still waiting for the rest of the
    // content (the host never heard of the end); when that session ends, nothing is installed.
    await undrop();
    t.is(await sha256On(hosts, LOST, FILE), old);
    await killSshSessions(hosts, LOST);
    await waitOnHost(hosts, LOST, NO_TEMP_FILES, 30_000);
    t.is(await sha256On(hosts, LOST, FILE), old, 'the partial content was never installed');

    // The next run converges the lost host too (full speed).
    const again = await runCli(args(newSite), { cwd: dir });
    t.is(again.code, 0, again.stdout + again.stderr);
    t.is(await sha256On(hosts, LOST, FILE), wanted);
    t.is((await hosts.ssh(LOST, `tail -n 1 ${HANDLER_LOG}`)).stdout.trim(), wanted);
  },
);

test.serial('--keepalive options bound the wait for a silent host; the others finish', async (t) => {
  const inventory = writeInventory(
    dir,
    { hosts: Object.fromEntries(NAMES.map((n) => [n, hosts.get(n)])) },
    'short',
  );
  // The lost host's first step runs for 5 s; its packets are dropped meanwhile. With a keepalive every
  // second and one unanswered allowed, it is declared lost after about 2 s, not at the end of the step.
  const file = join(dir, 'steps.ts');
  writeFileSync(
    file,
    `import { definePlaybook, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: (h) => [
  shell({ script: h.name === '${LOST}' ? 'touch /srv/faults/waiting; i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done' : 'true' }),
  shell({ script: 'echo second > /srv/faults/second' }),
] }] });
`,
  );
  await Promise.all(NAMES.map((n) => hosts.ssh(n, 'rm -f /srv/faults/waiting /srv/faults/second')));
  const run = startVerdandi(
    ['run', inventory, file, '--host-key-checking=off', '--keepalive', '1', '--keepalive-count', '1'],
    {
      cwd: dir,
    },
  );
  await waitOnHost(hosts, LOST, 'test -e /srv/faults/waiting');
  const undrop = await dropPackets(hosts.get(LOST));
  t.teardown(undrop);
  const droppedAt = Date.now();
  const res = await run.result;
  const waited = Date.now() - droppedAt;
  await undrop();
  await killSshSessions(hosts, LOST);
  t.is(res.code, 3, res.stdout + res.stderr);
  t.true(waited < 4_500, `declared lost ${waited} ms after the drop`);
  t.regex(
    res.stdout,
    /unreachable faults-d +lost: lost connection: no answer to keepalives .*\(during play 1 › shell touch/,
  );
  t.false(
    /internal error|Emitted 'error' event|\n\s+at /.test(res.stdout + res.stderr),
    res.stdout + res.stderr,
  );
  for (const n of ['faults-b', 'faults-c']) {
    t.is((await hosts.ssh(n, 'cat /srv/faults/second')).stdout, 'second\n', n);
  }
  t.is((await hosts.ssh(LOST, 'cat /srv/faults/second 2>/dev/null || echo none')).stdout, 'none\n');
});

test.serial(
  'SIGINT with hosts still waiting (--forks 1): the host in flight finishes, no other host starts',
  async (t) => {
    const inventory = writeInventory(
      dir,
      { hosts: Object.fromEntries(NAMES.map((n) => [n, hosts.get(n)])) },
      'forks',
    );
    const args = (file: string) => ['run', inventory, file, '--host-key-checking=off', '--forks', '1'];
    await Promise.all(NAMES.map((n) => hosts.ssh(n, 'mkdir -p /srv/faults')));
    const base = await runCli(args(site('base', 'base content\n')), { cwd: dir });
    t.is(base.code, 0, base.stdout + base.stderr);
    const line = 'option = "another configuration value, long enough to fill a line";\n';
    const text = line.repeat(Math.ceil(3_000_000 / line.length));
    t.teardown(await slowLink(hosts.get('faults-b')));
    const run = startVerdandi(args(site('stop', text)), { cwd: dir });
    await waitOnHost(hosts, 'faults-b', TRANSFER_STARTED);
    run.kill('SIGINT');
    const res = await run.result;
    t.is(res.code, 130, res.stdout + res.stderr);
    t.regex(res.stdout, /changed +faults-b +play 1 › copy/);
    t.regex(res.stdout, /stopped +faults-c +not started/);
    t.regex(res.stdout, /stopped +faults-d +not started/);
    t.regex(res.stdout, /interrupted by SIGINT: stopped early: faults-b, faults-c, faults-d/);
    t.is(await sha256On(hosts, 'faults-b', FILE), sha256(text), 'the transfer in flight finished whole');
    for (const n of ['faults-c', 'faults-d'])
      t.is(await sha256On(hosts, n, FILE), sha256('base content\n'), n);
  },
);
