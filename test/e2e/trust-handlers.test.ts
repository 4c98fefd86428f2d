/**
 * No notified handler is lost, whatever the host's disk or the playbook that runs next (the README's
 * "No handler is lost"). One test host whose /var/lib/verdandi is a 64 KB tmpfs:
 *
 * - the disk fills up after a copy notified two handlers, and the second one fails: its record stays,
 *   and once the disk is free the next run runs it;
 * - playbook a.ts notifies `restart` in play 1 and is killed; b.ts, whose play 1 also has a `restart`,
 *   neither runs nor clears a.ts's record (and reports it); a.ts's next run runs it;
 * - a record in the format of earlier versions is reported every run, never run;
 * - a record that cannot be cleared (read-only state directory) is a warning and stays pending.
 *
 * Every test asserts the host's real state (the handlers' log, the records), the exit code and the output.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { startVerdandi, waitOnHost } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tf-handlers';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-trust-handlers-'));
const STATE = '/var/lib/verdandi';
const HANDLED = '/srv/tfh/handled';

let inventory = '';

/** A playbook file in the project (its records name it by this path). */
function playbook(name: string, tasks: string, handlers: string): string {
  writeFileSync(
    join(dir, name),
    `import { definePlaybook, copy, shell } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
${tasks}
], handlers: {
${handlers}
} }] });
`,
  );
  return name;
}

/** A handler appending `word` to the log. */
const logs = (word: string) => `shell({ script: 'echo ${word} >> ${HANDLED}' })`;

const run = (site: string) => runCli(['run', inventory, site, '--host-key-checking=off'], { cwd: dir });

async function sh(command: string): Promise<string> {
  const res = await hosts.ssh(HOST, command);
  if (res.code !== 0) throw new Error(`${command}: exit ${res.code}: ${res.stderr}`);
  return res.stdout;
}

const handled = () => sh(`cat ${HANDLED} 2>/dev/null; true`);
/** The records on the host, one JSON line each. */
const records = () => sh(`cat ${STATE}/pending/*.json 2>/dev/null; true`);

let ready: Promise<void> | undefined;
function setup(): Promise<void> {
  ready ??= (async () => {
    inventory = writeInventory(dir, { hosts: { [HOST]: hosts.get(HOST) } });
    await sh(
      `mkdir -p /srv/tfh ${STATE} && (mountpoint -q ${STATE} || mount -t tmpfs -o size=64k tmpfs ${STATE})`,
    );
  })();
  return ready;
}

/** Each test starts with no records, no log and a writable, empty state directory. */
async function fresh(): Promise<void> {
  await setup();
  await sh(`mount -o remount,rw ${STATE} && rm -rf ${STATE}/* /srv/tfh/*`);
}

test.after.always(async () => {
  if (ready) await hosts.ssh(HOST, `umount ${STATE}; true`);
});

test.serial(
  'a full disk never erases a pending record: the handler that failed runs once the disk is free',
  async (t) => {
    await fresh();
    const site = playbook(
      'full.ts',
      `copy({ path: '/srv/tfh/app.conf', content: 'v1\\n', notify: ['a', 'b'] }),
  shell({ script: 'if [ -e /srv/tfh/fill ]; then cat /dev/zero > ${STATE}/filler 2>/dev/null; fi; true' }),`,
      `a: () => ${logs('a')},
  b: () => shell({ script: 'if [ -e /srv/tfh/b-fails ]; then echo "b refuses" >&2; exit 9; fi; echo b >> ${HANDLED}' }),`,
    );
    await sh('touch /srv/tfh/fill /srv/tfh/b-fails');
    const first = await run(site);
    t.is(first.code, 2, first.stdout + first.stderr);
    t.regex(first.stdout, /failed +tf-handlers {2}play 1 › handler: b › /);
    t.regex(first.stdout, /b refuses/);
    t.is(await handled(), 'a\n', 'a ran');
    // The filler took the whole 64 KB (a's cleared record gave back a page since).
    t.true(Number(await sh(`stat -c %s ${STATE}/filler`)) >= 48 * 1024, 'the disk was full');
    const left = await records();
    t.regex(left, /"handler":"b"/, 'b is still recorded');
    t.notRegex(left, /"handler":"a"/, 'a was cleared');

    await sh(`rm -f ${STATE}/filler /srv/tfh/fill /srv/tfh/b-fails`);
    const second = await run(site);
    t.is(second.code, 0, second.stdout + second.stderr);
    t.regex(second.stdout, /changed +tf-handlers {2}play 1 › handler: b › /);
    t.is(await handled(), 'a\nb\n', 'b ran at the next run, a did not run again');
    t.is(await records(), '');
  },
);

test.serial(
  "another playbook's handler of the same name neither runs nor clears a record; its own playbook runs it",
  async (t) => {
    await fresh();
    const a = playbook(
      'a.ts',
      `copy({ path: '/srv/tfh/a.conf', content: 'A\\n', notify: 'restart' }),
  shell({ script: 'touch /srv/tfh/a-holding; i=0; while [ ! -e /srv/tfh/a-go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done' }),`,
      `restart: () => ${logs('A')},`,
    );
    const b = playbook(
      'b.ts',
      `copy({ path: '/srv/tfh/b.conf', content: 'B\\n', notify: 'restart' }),`,
      `restart: () => ${logs('B')},`,
    );
    // a.ts changes its file and is killed before its handler runs.
    const killed = startVerdandi(['run', inventory, a, '--host-key-checking=off'], { cwd: dir });
    await waitOnHost(hosts, HOST, 'test -e /srv/tfh/a-holding');
    killed.kill('SIGKILL');
    t.is((await killed.result).signal, 'SIGKILL');
    await sh('touch /srv/tfh/a-go');
    t.regex(await records(), /^\{"source":"playbook a\.ts","unit":"play 1","handler":"restart"\}\n$/);

    const other = await run(b);
    t.is(other.code, 0, other.stdout + other.stderr);
    t.is(await handled(), 'B\n', "b.ts ran its own restart, once, and not a.ts's");
    t.regex(
      other.stdout + other.stderr,
      /warning: tf-handlers: handler "restart" of playbook a\.ts, play 1 is pending since an earlier run \(\/var\/lib\/verdandi\/pending\/[0-9a-f]{32}\.json\), and nothing in this run defines it: run playbook a\.ts/,
    );
    t.regex(await records(), /"source":"playbook a\.ts"/, "a.ts's record is still there");

    const again = await run(a);
    t.is(again.code, 0, again.stdout + again.stderr);
    t.regex(
      again.stdout,
      /ok +tf-handlers {2}play 1 › copy \/srv\/tfh\/a\.conf/,
      'nothing to change: the record alone runs the handler',
    );
    t.is(await handled(), 'B\nA\n');
    t.is(await records(), '');
    t.notRegex(again.stdout + again.stderr, /pending since/);
  },
);

test.serial('a record of an earlier version is reported every run and never run', async (t) => {
  await fresh();
  const b = playbook(
    'b.ts',
    `copy({ path: '/srv/tfh/b.conf', content: 'B\\n', notify: 'restart' }),`,
    `restart: () => ${logs('B')},`,
  );
  await sh('echo B > /srv/tfh/b.conf');
  await sh(`printf 'play 1\\trestart\\n' > ${STATE}/pending-handlers`);
  for (let i = 0; i < 2; i++) {
    const res = await run(b);
    t.is(res.code, 0, res.stdout + res.stderr);
    t.regex(
      res.stdout + res.stderr,
      /warning: tf-handlers: \/var\/lib\/verdandi\/pending-handlers holds handlers an earlier version of Verdandi left pending \(play 1 › restart\); they are not run/,
    );
    t.is(await handled(), '', 'not run: the old record does not say which playbook it belongs to');
    t.is(await sh(`cat ${STATE}/pending-handlers`), 'play 1\trestart\n', 'and not dropped');
  }
});

test.serial('a record that cannot be cleared is a warning, and the handler stays pending', async (t) => {
  await fresh();
  // The handler makes the state directory read-only before its record is cleared.
  const c = playbook(
    'c.ts',
    `copy({ path: '/srv/tfh/c.conf', content: 'C\\n', notify: 'reload' }),`,
    `reload: () => shell({ script: 'echo c >> ${HANDLED}; if [ -e /srv/tfh/ro ]; then mount -o remount,ro ${STATE}; fi' }),`,
  );
  await sh('touch /srv/tfh/ro');
  const first = await run(c);
  t.is(first.code, 0, first.stdout + first.stderr);
  t.regex(
    first.stdout + first.stderr,
    /warning: tf-handlers: play 1 › handler: reload ran, but its pending record \/var\/lib\/verdandi\/pending\/[0-9a-f]{32}\.json could not be removed: it runs again at the next run/,
  );
  t.regex(await records(), /"handler":"reload"/);

  await sh(`rm -f /srv/tfh/ro && mount -o remount,rw ${STATE}`);
  const second = await run(c);
  t.is(second.code, 0, second.stdout + second.stderr);
  t.is(await handled(), 'c\nc\n', 'the handler ran again');
  t.is(await records(), '');
});
