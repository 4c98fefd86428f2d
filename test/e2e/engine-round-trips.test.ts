/**
 * What a run that changes something costs, in round trips (`--json` `roundTrips`), over real SSH: a
 * provision of three roles where one template var changed (one file written, its handler restarting a
 * service) takes 2 round trips per host (the probes; the change with the rest of the walk, the handler
 * and the next roles' probes: engine/continuation.ts), and the host really changed (the file's sha256,
 * the service's new MainPID). A change that moves what a later task sees still converges, in the round
 * trips it says.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'oc-a';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-round-trips-e2e-'));

interface JsonReport {
  hosts: Record<string, { ok: number; changed: number; failed: number; skipped: number; roundTrips: number }>;
}

const UNIT = 'oc-app';
const SITE = '/srv/oc/site.conf';
const COPY = '/srv/oc/site.copy';

/** A role: its index.ts, and its other files (templates). */
function role(name: string, index: string, files: Record<string, string> = {}): void {
  mkdirSync(join(dir, 'roles', name), { recursive: true });
  writeFileSync(join(dir, 'roles', name, 'index.ts'), index);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, 'roles', name, file), content);
}

/**
 * ocbase: the directory and a systemd unit (a sleeping process: its MainPID tells a restart).
 * ocweb: the site's template (its `message` var notifies `restart app`), a link, and when `copy_site`
 * is on a command that copies the site (its guard compares both: the template's change moves it).
 * ocsvc: the unit started and enabled.
 */
function project(): void {
  role(
    'ocbase',
    `import { copy, defineRole, directory, service } from 'verdandi';
export default defineRole({
  name: 'ocbase',
  tasks: () => [
    directory({ path: '/srv/oc', mode: '0755' }),
    copy({ path: '/etc/systemd/system/${UNIT}.service', mode: '0644',
           content: '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' }),
    service({ daemonReload: true }),
  ],
});
`,
  );
  role(
    'ocweb',
    `import { defineRole, link, service, shell, template, z } from 'verdandi';
export default defineRole({
  name: 'ocweb',
  vars: z.object({ message: z.string(), copy_site: z.boolean().default(false) }),
  tasks: (v) => [
    template({ path: '${SITE}', src: new URL('./site.conf.hbs', import.meta.url), vars: { message: v.message },
               mode: '0644', notify: 'restart app' }),
    v.copy_site && shell({ script: 'cp ${SITE} ${COPY}', unless: 'cmp -s ${SITE} ${COPY}' }),
    link({ path: '/srv/oc/current', target: '${SITE}' }),
  ],
  handlers: { 'restart app': () => service({ unit: '${UNIT}', state: 'restarted' }) },
});
`,
    { 'site.conf.hbs': 'message = {{message}}\n' },
  );
  role(
    'ocsvc',
    `import { defineRole, service } from 'verdandi';
export default defineRole({
  name: 'ocsvc',
  tasks: () => [service({ unit: '${UNIT}', state: 'started', enabled: true })],
});
`,
  );
}

function inventory(vars: { message: string; copy_site?: boolean }): void {
  const h = hosts.get(HOST);
  writeInventory(
    dir,
    {
      hosts: { [HOST]: { address: h.address, user: h.user, key: h.key } },
      roles: ['ocbase', 'ocweb', 'ocsvc'],
      vars,
    },
    'oc',
  );
}

async function provision(): Promise<JsonReport['hosts'][string]> {
  const res = await runCli(['provision', 'oc', '--json', '--host-key-checking=off'], { cwd: dir });
  if (res.code !== 0) throw new Error(`provision failed (${res.code}):\n${res.stdout}\n${res.stderr}`);
  return (JSON.parse(res.stdout) as JsonReport).hosts[HOST];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

async function onHost(): Promise<{ site: string; pid: string; since: string }> {
  const res = await hosts.ssh(
    HOST,
    `sha256sum ${SITE} | cut -d' ' -f1; systemctl show -p MainPID --value ${UNIT}; systemctl show -p ActiveEnterTimestampMonotonic --value ${UNIT}`,
  );
  const [site, pid, since] = res.stdout.trim().split('\n');
  return { site, pid, since };
}

let ready: Promise<void> | undefined;
/** Converged once (the first test that runs does it): the base line of every test. */
function converged(): Promise<void> {
  ready ??= (async () => {
    project();
    inventory({ message: 'first' });
    await provision();
  })();
  return ready;
}

test.serial(
  'no change: one round trip; one template var changed: two, the file written and the service restarted',
  async (t) => {
    await converged();
    inventory({ message: 'first' });
    t.like(await provision(), { changed: 0, failed: 0, roundTrips: 1 });
    const before = await onHost();
    t.is(before.site, sha256('message = first\n'));
    t.not(before.pid, '0', 'the service runs');

    inventory({ message: 'second' });
    const run = await provision();
    // The template and its handler changed; every other task is ok.
    t.like(run, { changed: 2, failed: 0, roundTrips: 2 });
    const after = await onHost();
    t.is(after.site, sha256('message = second\n'), 'the new file');
    t.not(after.pid, before.pid, 'the service was restarted: a new main process');
    t.not(after.pid, '0');
    t.not(after.since, before.since, 'and it entered the active state again');
    const records = await hosts.ssh(HOST, 'ls /var/lib/verdandi/pending/ 2>/dev/null | wc -l');
    t.is(records.stdout.trim(), '0', 'the handler record was cleared');

    // Converged again: one round trip, nothing restarted.
    t.like(await provision(), { changed: 0, roundTrips: 1 });
    t.is((await onHost()).pid, after.pid);
  },
);

test.serial('a change that moves what a later task sees: the walk probes again and converges', async (t) => {
  await converged();
  inventory({ message: 'third', copy_site: true });
  await provision();
  t.is((await hosts.ssh(HOST, `cat ${COPY}`)).stdout, 'message = third\n');
  const before = await onHost();

  inventory({ message: 'fourth', copy_site: true });
  const run = await provision();
  // The probes (1); the template written, the rest probed again on the host: the copy's guard moved (1);
  // the copy made, with the handler and the next role's probes after it (1).
  t.like(run, { changed: 3, failed: 0, roundTrips: 3 });
  const after = await onHost();
  t.is(after.site, sha256('message = fourth\n'));
  t.is((await hosts.ssh(HOST, `cat ${COPY}`)).stdout, 'message = fourth\n', 'the copy saw the new file');
  t.not(after.pid, before.pid, 'the service was restarted');
  t.like(await provision(), { changed: 0, roundTrips: 1 });
});

test.serial(
  'a service stopped by hand: the probe its task and the handler share says so, and is not used once the handler moved it',
  async (t) => {
    // ocsvc's `started` task and ocweb's `restart app` handler probe the unit with the same words: the
    // first round trip runs that probe once and both read its answer (engine/probe-batch.ts, sameAs).
    await converged();
    inventory({ message: 'first' });
    await provision();
    const stop = async () => {
      await hosts.ssh(HOST, `systemctl stop ${UNIT}`);
      t.is((await hosts.ssh(HOST, `systemctl show -p MainPID --value ${UNIT}`)).stdout.trim(), '0');
    };

    // Nothing else moved: the task reads the shared answer (stopped) and starts the unit.
    await stop();
    t.like(await provision(), { changed: 1, failed: 0, roundTrips: 2 });
    const started = await onHost();
    t.not(started.pid, '0', 'started again');

    // The template changes too: its handler restarts the stopped unit. The task after it must not read
    // the shared answer taken before (stopped): the unit runs, so it is ok, and nothing starts twice.
    await stop();
    inventory({ message: 'fifth' });
    t.like(await provision(), { changed: 2, failed: 0, roundTrips: 2 });
    const after = await onHost();
    t.is(after.site, sha256('message = fifth\n'));
    t.not(after.pid, '0', 'the handler started it');
    t.not(after.pid, started.pid);
    t.like(await provision(), { changed: 0, roundTrips: 1 });
    t.is((await onHost()).pid, after.pid);
  },
);
