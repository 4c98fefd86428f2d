import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { APT_UPDATE, apt, compareDebianVersions, parseAptProbe } from '../../../src/tasks/apt.js';
import { UserError } from '../../../src/util/errors.js';

const NOW = 1_700_000_000;
const APT_GET =
  'DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold';

/**
 * Probe output: lists updated `age` seconds ago (undefined: no stamp at all), `indexes` index files;
 * `deb`: the line of a .deb (`deb <package> <version>`, `deb-missing`...).
 */
function probe(opts: {
  age?: number;
  indexes?: number;
  pkgs?: string[];
  policy?: Array<[string, string]>;
  deb?: string;
}) {
  const lines = [`verdandi-apt now ${NOW}`];
  if (opts.age !== undefined) {
    lines.push(`verdandi-apt stamp ${NOW - opts.age - 500}`, `verdandi-apt stamp ${NOW - opts.age}`);
  }
  lines.push(`verdandi-apt indexes ${opts.indexes ?? 3}`);
  if (opts.deb !== undefined) lines.push(`verdandi-apt ${opts.deb}`);
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

test('purge: installed packages and those with only config files left are purged', (t) => {
  const task = apt({ packages: ['nginx', 'curl', 'git'], state: 'absent', purge: true });
  const plan = task.plan(probe({ age: 10, pkgs: [installed('nginx'), 'curl deinstall ok config-files 7'] }));
  t.deepEqual(plan.steps, [
    { kind: 'run', command: `${APT_GET} purge nginx curl`, description: 'apt-get purge nginx curl' },
  ]);
  t.is(plan.reason, 'installed: nginx, config files left: curl');
  t.deepEqual(task.plan(probe({ age: 10, pkgs: ['nginx deinstall ok not-installed'] })).steps, []);
});

test('purge goes with state absent only', (t) => {
  t.throws(() => apt({ packages: 'nginx', purge: true }), {
    instanceOf: UserError,
    message: /apt nginx: purge goes with state absent, got state "present"/,
  });
});

test('defaultRelease and allowDowngrade go to the install command, the release to apt-cache policy too', (t) => {
  const task = apt({ packages: 'nginx', defaultRelease: 'bookworm-backports', allowDowngrade: true });
  t.deepEqual(task.plan(probe({ age: 10 })).steps, [
    {
      kind: 'run',
      command: `${APT_GET} install -t bookworm-backports --allow-downgrades nginx`,
      description: 'apt-get install nginx',
    },
  ]);
  const latest = apt({ packages: 'nginx', state: 'latest', defaultRelease: 'bookworm-backports' });
  t.regex(latest.probe, /apt-cache -t bookworm-backports policy nginx/);
  t.throws(() => apt({ packages: 'nginx', defaultRelease: 'a b' }), {
    instanceOf: UserError,
    message: /defaultRelease must be a release name, got "a b"/,
  });
});

const debLine = (name: string, version: string) => `deb ${name} ${version}`;

test('deb: installed when dpkg has no or another version of its package, converged at the same one', (t) => {
  const task = apt({ deb: '/tmp/toe hello_1.0_all.deb' });
  t.is(task.name, 'apt /tmp/toe hello_1.0_all.deb');
  t.regex(task.probe, /vd_deb='\/tmp\/toe hello_1\.0_all\.deb'/);
  t.regex(task.probe, /dpkg-deb -f "\$vd_deb" Package/);
  const install = {
    kind: 'run',
    command: `${APT_GET} install '/tmp/toe hello_1.0_all.deb'`,
    description: 'apt-get install /tmp/toe hello_1.0_all.deb',
  };
  t.deepEqual(task.plan(probe({ age: 10, deb: debLine('toe-hello', '1.0') })), {
    steps: [install],
    reason: 'toe-hello is not installed (the .deb holds 1.0)',
  });
  t.deepEqual(
    task.plan(probe({ age: 10, deb: debLine('toe-hello', '1.0'), pkgs: [installed('toe-hello', '0.9')] })),
    {
      steps: [install],
      reason: 'toe-hello 0.9 is installed, the .deb holds 1.0',
    },
  );
  t.deepEqual(
    task.plan(probe({ age: 10, deb: debLine('toe-hello', '1.0'), pkgs: [installed('toe-hello', '1.0')] }))
      .steps,
    [],
  );
  // Lists never downloaded: refreshed first, for the .deb's dependencies.
  t.deepEqual(task.plan(probe({ age: 10, indexes: 0, deb: debLine('toe-hello', '1.0') })).steps, [
    APT_UPDATE,
    install,
  ]);
});

test('deb: allowDowngrade lets an older .deb replace a newer version', (t) => {
  const task = apt({ deb: '/tmp/hello_0.9_all.deb', allowDowngrade: true });
  const plan = task.plan(
    probe({ age: 10, deb: debLine('toe-hello', '0.9'), pkgs: [installed('toe-hello', '1.0')] }),
  );
  t.is(
    (plan.steps[0] as { command: string }).command,
    `${APT_GET} install --allow-downgrades /tmp/hello_0.9_all.deb`,
  );
});

test('deb: a missing file, an unreadable one or a failed fetch is an error naming the .deb', (t) => {
  const task = apt({ deb: '/tmp/none.deb' });
  t.deepEqual(task.plan(probe({ age: 10, deb: 'deb-missing' })), {
    steps: [],
    error: 'apt /tmp/none.deb: no such file on the host',
  });
  t.regex(task.plan(probe({ age: 10, deb: 'deb-unreadable' })).error ?? '', /not a \.deb file/);
  const url = apt({ deb: 'https://user:pw@example.org/hello.deb' });
  t.regex(
    url.plan(probe({ age: 10, deb: 'deb-unfetched curl: (22) The requested URL returned error: 404' }))
      .error ?? '',
    /could not fetch it: curl: \(22\) The requested URL returned error: 404/,
  );
});

test('deb from a URL: the URL reaches curl on standard input, never on a command line', (t) => {
  const task = apt({ deb: 'https://user:s3cret@example.org/hello_1.0_all.deb' });
  t.regex(
    task.probe,
    /curl -fsSL -o "\$vd_deb" -K - 2>"\$vd_debd\/error" <<'VD_URL'\nurl = "https:\/\/user:s3cret@example\.org\/hello_1\.0_all\.deb"\nVD_URL\n/,
  );
  const plan = task.plan(probe({ age: 10, deb: debLine('toe-hello', '1.0') }));
  const step = plan.steps[0] as { command: string; stdin: string; description: string };
  t.false(step.command.includes('s3cret'));
  t.false(step.description.includes('s3cret'));
  t.is(step.stdin, 'url = "https://user:s3cret@example.org/hello_1.0_all.deb"\n');
  t.regex(step.command, /apt-get .* install "\$vd_debd\/package\.deb"$/);
});

test('deb: exactly one of packages or deb, with state present; a bad deb is refused', (t) => {
  t.throws(() => apt({ packages: 'xz-utils', deb: '/tmp/x.deb' }), {
    message: /give exactly one of packages or deb/,
  });
  t.throws(() => apt({}), { message: /give exactly one of packages or deb/ });
  t.throws(() => apt({ deb: '/tmp/x.deb', state: 'absent' }), {
    message: /a deb is installed with state present/,
  });
  t.throws(() => apt({ deb: 'x.deb' }), {
    message: /deb must be an absolute path of a \.deb file on the host or an http\(s\) URL/,
  });
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

/** The apt probe run by sh with /var/lib/apt under a temporary root (of a package dpkg does not know). */
function aptProbeLocally(t: { teardown(fn: () => void): void }, lists: string[] | undefined) {
  const root = mkdtempSync(join(tmpdir(), 'vd-apt-probe-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  if (lists !== undefined) {
    mkdirSync(join(root, 'var/lib/apt/lists/partial'), { recursive: true });
    for (const name of lists) writeFileSync(join(root, 'var/lib/apt/lists', name), '');
    utimesSync(join(root, 'var/lib/apt/lists/partial'), NOW - 100, NOW - 100);
    utimesSync(join(root, 'var/lib/apt/lists'), NOW - 50, NOW - 50);
  }
  const script = apt({ packages: ['vd-no-such-package'] }).probe.replaceAll(
    '/var/lib/apt/',
    `${root}/var/lib/apt/`,
  );
  return parseAptProbe(execFileSync('sh', ['-c', script], { encoding: 'utf8' }));
}

test('the probe on a real shell: the newest stamp, the Packages lists counted, none when absent', (t) => {
  const seen = aptProbeLocally(t, [
    'deb.example_dists_bookworm_main_binary-amd64_Packages',
    'deb.example_dists_bookworm-updates_main_binary-amd64_Packages.lz4',
    'deb.example_dists_bookworm_Release',
    'lock',
  ]);
  t.is(seen.indexCount, 2);
  t.is(seen.lastUpdate, NOW - 50);
  t.true(seen.now !== undefined && seen.now > NOW);
  const empty = aptProbeLocally(t, []);
  t.is(empty.indexCount, 0);
  const none = aptProbeLocally(t, undefined);
  t.is(none.indexCount, 0);
  t.is(none.lastUpdate, undefined);
});
