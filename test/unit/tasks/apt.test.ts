import test from 'ava';
import { APT_UPDATE, apt, compareDebianVersions } from '../../../src/tasks/apt.js';
import { UserError } from '../../../src/util/errors.js';

const NOW = 1_700_000_000;
const APT_GET =
  'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold';

/** Probe output: lists updated `age` seconds ago (undefined: no stamp at all), `indexes` index files. */
function probe(opts: { age?: number; indexes?: number; pkgs?: string[]; policy?: Array<[string, string]> }) {
  const lines = [`verdandi-apt now ${NOW}`];
  if (opts.age !== undefined) {
    lines.push(`verdandi-apt stamp ${NOW - opts.age - 500}`, `verdandi-apt stamp ${NOW - opts.age}`);
  }
  lines.push(`verdandi-apt indexes ${opts.indexes ?? 3}`);
  for (const p of opts.pkgs ?? []) lines.push(`verdandi-apt pkg ${p}`);
  for (const [name, candidate] of opts.policy ?? []) {
    lines.push(`verdandi-apt policy ${name}`, `verdandi-apt candidate ${candidate}`);
  }
  return { stdout: `${lines.join('\n')}\n`, exitCode: 0 };
}

const installed = (name: string, version = '1.0-1') => `${name} install ok installed ${version}`;

test('all packages installed: converged, no cache refresh even when the lists are stale', (t) => {
  const task = apt({ packages: ['nginx', 'curl'] });
  const plan = task.plan(probe({ age: 100_000, pkgs: [installed('nginx'), installed('curl')] }));
  t.deepEqual(plan.steps, []);
});

test('missing packages (absent from dpkg output) are installed with ONE apt-get, no refresh when lists are fresh', (t) => {
  const task = apt({ packages: ['nginx', 'curl', 'git'] });
  const plan = task.plan(probe({ age: 60, pkgs: [installed('curl')] }));
  t.deepEqual(plan.steps, [
    { kind: 'run', command: `${APT_GET} install nginx git`, description: 'apt-get install nginx git' },
  ]);
  t.is(plan.reason, 'not installed: nginx, git');
});

test('removed package with config files left counts as missing', (t) => {
  const plan = apt({ packages: 'nginx' }).plan(
    probe({ age: 60, pkgs: ['nginx deinstall ok config-files 1.22-1'] }),
  );
  t.is(plan.steps.length, 1);
  t.regex((plan.steps[0] as { command: string }).command, / install nginx$/);
});

test('stale lists are refreshed before installing a missing package', (t) => {
  const plan = apt({ packages: 'nginx', cacheValidTime: 3600 }).plan(probe({ age: 3601 }));
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [APT_UPDATE.command, `${APT_GET} install nginx`],
  );
  t.is(plan.reason, 'not installed: nginx; apt lists are 3601s old (refreshed after 3600s)');
  t.is(APT_UPDATE.command, `${APT_GET} update && touch -c /var/lib/apt/lists/partial`);
});

test('lists exactly at the valid age are still fresh', (t) => {
  const plan = apt({ packages: 'nginx', cacheValidTime: 3600 }).plan(probe({ age: 3600 }));
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [`${APT_GET} install nginx`],
  );
});

test('the newest stamp counts for the cache age', (t) => {
  const stdout = [
    `verdandi-apt now ${NOW}`,
    `verdandi-apt stamp ${NOW - 90_000}`,
    `verdandi-apt stamp ${NOW - 10}`,
    'verdandi-apt indexes 2',
  ].join('\n');
  const plan = apt({ packages: 'nginx' }).plan({ stdout, exitCode: 0 });
  t.is(plan.steps.length, 1);
});

test('updateCache: false never refreshes existing lists', (t) => {
  const plan = apt({ packages: 'nginx', updateCache: false }).plan(probe({ age: 999_999 }));
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [`${APT_GET} install nginx`],
  );
});

test('lists never downloaded: refreshed before installing, even with updateCache: false', (t) => {
  const plan = apt({ packages: 'nginx', updateCache: false }).plan(probe({ indexes: 0 }));
  t.deepEqual(plan.steps[0], APT_UPDATE);
  t.is(plan.steps.length, 2);
  t.regex(plan.reason ?? '', /apt lists were never downloaded/);
});

test('no stamp at all counts as stale', (t) => {
  const plan = apt({ packages: 'nginx' }).plan(probe({}));
  t.deepEqual(plan.steps[0], APT_UPDATE);
});

test('half-installed package is reinstalled in the same apt-get as the missing ones', (t) => {
  const plan = apt({ packages: ['nginx', 'curl'] }).plan(
    probe({ age: 10, pkgs: ['nginx install reinstreq half-installed 1.22-1'] }),
  );
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [`${APT_GET} install --reinstall nginx curl`],
  );
  t.is(plan.reason, 'not installed: curl; half-installed: nginx');
});

test('unpacked (interrupted) package: dpkg --configure -a finishes it', (t) => {
  const plan = apt({ packages: ['nginx'] }).plan(
    probe({ age: 10, pkgs: ['nginx install ok unpacked 1.22-1'] }),
  );
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    ['DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a'],
  );
  t.is(plan.reason, 'not fully configured: nginx');
});

test('triggers-pending counts as installed', (t) => {
  const plan = apt({ packages: 'man-db' }).plan(
    probe({ age: 10, pkgs: ['man-db install ok triggers-pending 2.11'] }),
  );
  t.deepEqual(plan.steps, []);
});

test('a package installed for two architectures counts once, as installed', (t) => {
  const plan = apt({ packages: 'libc6' }).plan(
    probe({ age: 10, pkgs: ['libc6 install ok installed 2.36-9', 'libc6 unknown ok not-installed '] }),
  );
  t.deepEqual(plan.steps, []);
});

test('absent: installed (and broken) packages are removed, missing ones ignored, no refresh', (t) => {
  const task = apt({ packages: ['nginx', 'curl', 'apache2'], state: 'absent' });
  const plan = task.plan(
    probe({
      age: 999_999,
      pkgs: [
        installed('nginx'),
        'apache2 install ok half-configured 2.4',
        'curl deinstall ok config-files 7',
      ],
    }),
  );
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [`${APT_GET} remove nginx apache2`],
  );
  t.deepEqual(apt({ packages: 'nginx', state: 'absent' }).plan(probe({ age: 10 })).steps, []);
});

test('latest with fresh lists: upgrades only packages whose candidate is newer', (t) => {
  const task = apt({ packages: ['bash', 'curl', 'nginx'], state: 'latest' });
  const plan = task.plan(
    probe({
      age: 10,
      pkgs: [
        installed('bash', '5.2.15-2+b8'),
        installed('curl', '7.88.1-10'),
        installed('nginx', '1.22.1-9+deb12u1'),
      ],
      policy: [
        ['bash', '5.2.15-2+b13'],
        ['curl', '7.88.1-10'],
        // Installed from elsewhere, newer than the candidate: never a downgrade.
        ['nginx', '1.22.1-9'],
      ],
    }),
  );
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [`${APT_GET} install bash`],
  );
  t.is(plan.reason, 'newer version available: bash 5.2.15-2+b8 → 5.2.15-2+b13');
});

test('latest with everything at the candidate: converged', (t) => {
  const plan = apt({ packages: ['curl'], state: 'latest' }).plan(
    probe({ age: 10, pkgs: [installed('curl', '7.88.1-10')], policy: [['curl', '7.88.1-10']] }),
  );
  t.deepEqual(plan.steps, []);
});

test('latest with stale lists: refresh, then install every package (candidates were stale)', (t) => {
  const plan = apt({ packages: ['curl', 'bash'], state: 'latest' }).plan(
    probe({ age: 7200, pkgs: [installed('curl'), installed('bash')], policy: [['curl', '1.0-1']] }),
  );
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [APT_UPDATE.command, `${APT_GET} install curl bash`],
  );
  t.regex(plan.reason ?? '', /apt lists are 7200s old/);
});

test('latest installs missing packages without touching up-to-date ones', (t) => {
  const plan = apt({ packages: ['curl', 'jq'], state: 'latest' }).plan(
    probe({
      age: 10,
      pkgs: [installed('curl', '2')],
      policy: [
        ['curl', '2'],
        ['jq', '1.6-2'],
      ],
    }),
  );
  t.deepEqual(
    plan.steps.map((s) => (s as { command: string }).command),
    [`${APT_GET} install jq`],
  );
});

test('probe: dpkg-query with the status format, apt-cache only for latest, stderr of dpkg-query dropped', (t) => {
  const present = apt({ packages: ['nginx', 'curl'] }).probe;
  t.true(
    present.includes(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not a JS template
      "dpkg-query -W -f='verdandi-apt pkg ${Package} ${Status} ${Version}\\n' nginx curl 2>/dev/null",
    ),
  );
  t.false(present.includes('apt-cache'));
  t.true(present.includes('/var/lib/apt/periodic/update-success-stamp'));
  t.true(apt({ packages: 'nginx', state: 'latest' }).probe.includes('apt-cache policy nginx'));
});

test('a probe that printed nothing is an error, not "everything missing"', (t) => {
  const plan = apt({ packages: 'nginx' }).plan({ stdout: 'sh: 1: dpkg-query: not found\n', exitCode: 127 });
  t.deepEqual(plan.steps, []);
  t.regex(plan.error ?? '', /apt probe printed nothing usable/);
});

test('invalid package names and states are refused when the task is built', (t) => {
  const err = t.throws(() => apt({ packages: ['nginx; rm -rf /'] }), { instanceOf: UserError });
  t.regex(err?.message ?? '', /is not a Debian package name/);
  t.regex(err?.message ?? '', /\(at .*apt\.test\.ts:\d+\)/);
  t.throws(() => apt({ packages: [] }), { instanceOf: UserError });
  t.throws(() => apt({ packages: 'nginx', state: 'installed' as 'present' }), { instanceOf: UserError });
});

test('default name lists the packages; TaskOptions pass through', (t) => {
  const task = apt({ packages: ['nginx', 'curl'], notify: 'restart nginx', tags: ['web'] });
  t.is(task.name, 'apt nginx, curl');
  t.is(task.type, 'apt');
  t.deepEqual(task.notify, ['restart nginx']);
  t.deepEqual(task.tags, ['web']);
});

test('Debian version comparison matches dpkg --compare-versions', (t) => {
  // Expected results taken from dpkg --compare-versions on Debian 12.
  const cases: Array<[string, '<' | '=' | '>', string]> = [
    ['1.0', '<', '1.0-1'],
    ['1.0~rc1', '<', '1.0'],
    ['1:0.9', '>', '2.0'],
    ['1.2.3', '<', '1.10'],
    ['5.2.15-2+b8', '<', '5.2.15-2+b13'],
    ['1.0a', '>', '1.0'],
    ['1.0+', '>', '1.0a'],
    ['1.0~~', '<', '1.0~'],
    ['2.30-1', '>', '2.3-1'],
    ['1.001', '=', '1.1'],
    ['0:1.0', '=', '1.0'],
    ['1.0-1~bpo12+1', '<', '1.0-1'],
  ];
  for (const [a, op, b] of cases) {
    const r = Math.sign(compareDebianVersions(a, b));
    t.is(r, op === '<' ? -1 : op === '=' ? 0 : 1, `${a} ${op} ${b}`);
    t.is(Math.sign(compareDebianVersions(b, a)), r === 0 ? 0 : -r, `${b} vs ${a}`);
  }
});
