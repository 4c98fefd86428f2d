/**
 * A managed file is the old one or the new one, whole, whatever happens during a write; no notified
 * handler is ever lost; Ctrl-C / SIGTERM stop cleanly (issue "runs that survive faults").
 *
 * One test host. A 5 MB `copy` with `validate` and `notify` over a link slowed to 4 Mbit/s (about 10 s on
 * the wire) is interrupted mid-transfer: SIGKILL, SIGINT, SIGTERM, a second SIGINT, the SSH session
 * killed on the host. Then a small write is SIGKILLed at each phase (validate, just after the rename)
 * and the next run has run the handler. Every test asserts the sha256 of the file on the host, the
 * exit code and the output, and that no temporary file is left; waits are on markers, never sleeps.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { killSshSessions, sha256On, slowLink, startVerdandi, waitOnHost } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'faults-a';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-faults-write-'));
const FILE = '/srv/faults/big.conf';
const HANDLER_LOG = '/srv/faults/handler.log';
const VALIDATING = '/srv/faults/validating';
/** A temporary file of a write in progress (in its .verdandi-XXXXXX directory), with some content already. */
const TRANSFER_STARTED = `find /srv/faults -path '*/.verdandi-*/*' -size +200k | grep -q .`;
const NO_TEMP_FILES = `! find /srv/faults -name '.verdandi-*' | grep -q .`;

let inventory = '';
let generation = 0;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Content unique to this generation: every run has a change to make. */
function content(bytes: number): string {
  generation++;
  const line = `option_${generation} = "${'x'.repeat(60)}";\n`;
  return `# generation ${generation}\n${line.repeat(Math.ceil(bytes / line.length))}`;
}

/**
 * The playbook: one copy with validate and notify; the handler appends the sha256 of the file it saw.
 * `validate` may leave a marker and wait for a go file (the test's hold on the validate phase).
 */
function playbook(text: string, validate = 'test -s %s', after?: string): string {
  const contentFile = join(dir, `content-${generation}.txt`);
  writeFileSync(contentFile, text);
  const file = join(dir, `site-${generation}.ts`);
  writeFileSync(
    file,
    `import { readFileSync } from 'node:fs';
import { definePlaybook, copy, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
  copy({ path: '${FILE}', content: readFileSync(${JSON.stringify(contentFile)}, 'utf8'), mode: '0640',
         validate: ${JSON.stringify(validate)}, notify: 'note' }),
  ${after ? `shell({ script: ${JSON.stringify(after)} }),` : ''}
], handlers: { note: () => shell({ script: 'sha256sum ${FILE} | cut -d" " -f1 >> ${HANDLER_LOG}' }) } }] });
`,
  );
  return file;
}

const args = (site: string) => ['run', inventory, site, '--host-key-checking=off'];

async function lastHandled(): Promise<string> {
  const res = await hosts.ssh(HOST, `tail -n 1 ${HANDLER_LOG} 2>/dev/null; true`);
  return res.stdout.trim();
}

async function pendingRecords(): Promise<string> {
  return (await hosts.ssh(HOST, 'cat /var/lib/verdandi/pending/*.json 2>/dev/null; true')).stdout;
}

/** Converges to `text` with a plain run (no fault): the base line of each test. */
async function converge(text: string): Promise<void> {
  const res = await runCli(args(playbook(text)), { cwd: dir });
  if (res.code !== 0) throw new Error(`converge failed (${res.code}): ${res.stdout}${res.stderr}`);
}

function noStackTrace(t: { false(v: boolean, m?: string): void }, output: string): void {
  t.false(/\n\s+at .+\(.+:\d+:\d+\)/.test(output), `a stack trace was printed:\n${output}`);
  t.false(/internal error|Emitted 'error' event/.test(output), output);
}

let ready: Promise<void> | undefined;
/** Once per file, after the host booted (ava runs `before` hooks concurrently). */
function setup(): Promise<void> {
  ready ??= (async () => {
    inventory = writeInventory(dir, { hosts: { [HOST]: hosts.get(HOST) } });
    await hosts.ssh(HOST, 'mkdir -p /srv/faults && rm -rf /var/lib/verdandi/pending');
  })();
  return ready;
}

interface Interrupted {
  before: string;
  wanted: string;
  site: string;
  run: ReturnType<typeof startVerdandi>;
  /** Gives the link its speed back (also done at the end of the test). */
  restore: () => Promise<void>;
}

/** Starts a run of a new 5 MB content over a slowed link and waits until its transfer is under way. */
async function interruptedTransfer(t: { teardown(fn: () => Promise<void>): void }): Promise<Interrupted> {
  const before = await sha256On(hosts, HOST, FILE);
  const text = content(5_000_000);
  const site = playbook(text);
  const restore = await slowLink(hosts.get(HOST));
  t.teardown(restore);
  const run = startVerdandi(args(site), { cwd: dir });
  await waitOnHost(hosts, HOST, TRANSFER_STARTED);
  return { before, wanted: sha256(text), site, run, restore };
}

/** The next run (full speed) installs the wanted file and runs the handler on it; nothing stays pending. */
async function nextRunConverges(t: import('ava').ExecutionContext, i: Interrupted): Promise<void> {
  await i.restore();
  const again = await runCli(args(i.site), { cwd: dir });
  t.is(again.code, 0, again.stdout + again.stderr);
  t.is(await sha256On(hosts, HOST, FILE), i.wanted);
  t.is(await lastHandled(), i.wanted, 'the handler ran on the new file');
  t.is(await pendingRecords(), '');
}

test.serial(
  'SIGKILL mid-transfer: the old file stays, nothing half-written; the next run converges',
  async (t) => {
    await setup();
    await converge(content(1000));
    const i = await interruptedTransfer(t);
    i.run.kill('SIGKILL');
    const res = await i.run.result;
    t.is(res.signal, 'SIGKILL');
    // The host sees the end of its input: the short content is refused and the temporary file removed.
    await waitOnHost(hosts, HOST, NO_TEMP_FILES, 30_000);
    t.is(await sha256On(hosts, HOST, FILE), i.before);
    t.is(await pendingRecords(), '', 'nothing changed, nothing recorded');
    await nextRunConverges(t, i);
  },
);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test.serial(
    `${signal} mid-transfer: the write in flight finishes whole, no handler starts, exit ${signal === 'SIGINT' ? 130 : 143}`,
    async (t) => {
      await setup();
      await converge(content(1000));
      const handledBefore = await lastHandled();
      const i = await interruptedTransfer(t);
      i.run.kill(signal);
      const res = await i.run.result;
      t.is(res.code, signal === 'SIGINT' ? 130 : 143, res.stdout + res.stderr);
      t.regex(res.stdout, new RegExp(`${signal}: stopping`));
      t.regex(res.stdout, /changed +faults-a +play 1 › copy \/srv\/faults\/big\.conf/);
      t.regex(res.stdout, /stopped +faults-a +stopped before/);
      t.regex(res.stdout, new RegExp(`interrupted by ${signal}`));
      t.regex(res.stdout, /host +ok +changed/, 'the recap is printed');
      noStackTrace(t, res.stdout + res.stderr);
      t.is(await sha256On(hosts, HOST, FILE), i.wanted, 'the step in flight finished: the new file, whole');
      t.is(await lastHandled(), handledBefore, 'no handler started after the stop request');
      t.regex(
        await pendingRecords(),
        /"unit":"play 1","handler":"note"/,
        'the handler is recorded on the host',
      );
      await waitOnHost(hosts, HOST, NO_TEMP_FILES, 5_000);
      await nextRunConverges(t, i);
    },
  );
}

test.serial('a second SIGINT aborts at once: the old file stays, no temporary file, exit 130', async (t) => {
  await setup();
  await converge(content(1000));
  const i = await interruptedTransfer(t);
  i.run.kill('SIGINT');
  await waitFor(() => i.run.stdout.includes('SIGINT: stopping'));
  i.run.kill('SIGINT');
  const res = await i.run.result;
  t.is(res.code, 130, res.stdout + res.stderr);
  t.true(res.ms < 8_000, `the abort took ${res.ms} ms (the transfer alone takes about 10 s)`);
  t.regex(res.stdout, /SIGINT again: aborting/);
  t.regex(res.stdout, /stopped +faults-a +aborted/);
  t.regex(res.stdout, /interrupted by SIGINT/);
  noStackTrace(t, res.stdout + res.stderr);
  await waitOnHost(hosts, HOST, NO_TEMP_FILES, 30_000);
  t.is(await sha256On(hosts, HOST, FILE), i.before);
  await nextRunConverges(t, i);
});

test.serial(
  'the SSH session killed on the host mid-transfer: unreachable naming the step, exit 3, old file',
  async (t) => {
    await setup();
    await converge(content(1000));
    const i = await interruptedTransfer(t);
    t.true((await killSshSessions(hosts, HOST)) >= 1);
    const res = await i.run.result;
    t.is(res.code, 3, res.stdout + res.stderr);
    t.regex(
      res.stdout,
      /unreachable faults-a +lost: lost connection: .*\(during play 1 › copy \/srv\/faults\/big\.conf\)/,
    );
    t.regex(res.stdout, /host +ok +changed/, 'the recap is printed');
    noStackTrace(t, res.stdout + res.stderr);
    await waitOnHost(hosts, HOST, NO_TEMP_FILES, 30_000);
    t.is(await sha256On(hosts, HOST, FILE), i.before);
    await nextRunConverges(t, i);
  },
);

/** Polls a condition of this process (output of the child), bounded. */
async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition never held');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test.serial('SIGKILL while validating: the next run has run the handler', async (t) => {
  await setup();
  await converge(content(1000));
  const text = content(50_000);
  // validate leaves a marker, then waits (bounded) for the test to have killed verdandi.
  const site = playbook(
    text,
    `touch ${VALIDATING} && i=0; while [ -e ${VALIDATING} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; test -s %s`,
  );
  await hosts.ssh(HOST, `rm -f ${VALIDATING}`);
  const run = startVerdandi(args(site), { cwd: dir });
  await waitOnHost(hosts, HOST, `test -e ${VALIDATING}`);
  run.kill('SIGKILL');
  await run.result;
  await hosts.ssh(HOST, `rm -f ${VALIDATING}`); // validation goes on without its controller
  await waitOnHost(hosts, HOST, NO_TEMP_FILES, 30_000);
  const now = await sha256On(hosts, HOST, FILE);
  t.log(now === sha256(text) ? 'the write completed on the host' : 'the write did not complete');
  const again = await runCli(args(site), { cwd: dir });
  t.is(again.code, 0, again.stdout + again.stderr);
  t.is(await sha256On(hosts, HOST, FILE), sha256(text));
  t.is(await lastHandled(), sha256(text), 'the handler ran on the new file');
  t.is(await pendingRecords(), '');
});

test.serial(
  'SIGKILL just after the rename: the record was made before it; the next run runs the handler',
  async (t) => {
    await setup();
    await converge(content(1000));
    const text = content(50_000);
    // A task after the copy holds the run (bounded) once the rename is done, before any handler.
    const held = '/srv/faults/held';
    const site = playbook(
      text,
      undefined,
      `touch ${held}; i=0; while [ -e ${held} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`,
    );
    await hosts.ssh(HOST, `rm -f ${held}`);
    const run = startVerdandi(args(site), { cwd: dir });
    await waitOnHost(hosts, HOST, `test -e ${held}`);
    run.kill('SIGKILL');
    await run.result;
    await hosts.ssh(HOST, `rm -f ${held}`);
    t.is(await sha256On(hosts, HOST, FILE), sha256(text));
    t.not(await lastHandled(), sha256(text), 'the handler had not run yet');
    t.regex(await pendingRecords(), /"unit":"play 1","handler":"note"/);
    const again = await runCli(args(playbook(text)), { cwd: dir });
    t.is(again.code, 0, again.stdout + again.stderr);
    t.regex(again.stdout, /ok +faults-a +play 1 › copy/);
    t.is(await lastHandled(), sha256(text), 'the pending handler ran');
    t.is(await pendingRecords(), '');
  },
);
