/** The pure parts of the test host harness: no machine is touched. */
import test from 'ava';
import yaml from 'js-yaml';
import { namesForUp, targetsForDown } from '../../src/testhost/cli.js';
import {
  guestAptSources,
  guestEtcHosts,
  guestResolvConf,
  mirrorsFrom,
  parseDeb822Sources,
  parseOneLineSources,
  readMirrors,
} from '../../src/testhost/guest-config.js';
import { renderLocalInventory } from '../../src/testhost/inventory.js';
import { nspawnCommand } from '../../src/testhost/machine.js';
import {
  baseImageId,
  gatewayAddress,
  guestAddress,
  hostVethName,
  LAST_SLOT,
  layout,
  MAX_INTERFACE_NAME,
  nameOfNamespace,
  namespaceName,
  pickFreeSlot,
  slotOfVeth,
  validateHostName,
} from '../../src/testhost/naming.js';
import { checkMachine, type MachineChecks } from '../../src/testhost/preflight.js';
import { parseStatFields } from '../../src/testhost/processes.js';
import { UserError } from '../../src/util/errors.js';

// ---- mirror and guest files ------------------------------------------------------------------------

const DEB822 = `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`;

test('the mirror is read from the URIs: of a deb822 sources file', (t) => {
  t.deepEqual(mirrorsFrom(parseDeb822Sources(DEB822)), {
    main: 'http://mirror.example/debian',
    security: 'http://mirror.example/debian-security',
  });
});

test('a deb822 stanza that is disabled, source-only or security-only is not the main mirror', (t) => {
  const text = `Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://sources.example/debian
Suites: bookworm

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security

Types: deb
URIs: cdrom:/media http://real.example/debian/
Suites: bookworm
`;
  t.deepEqual(mirrorsFrom(parseDeb822Sources(text)), {
    main: 'http://real.example/debian',
    security: 'http://security.example/debian-security',
  });
});

test('the mirror is read from deb lines of a one-line sources.list', (t) => {
  const text = `# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://one.example/debian bookworm main contrib
deb http://one.example/debian-security bookworm-security main
`;
  t.deepEqual(mirrorsFrom(parseOneLineSources(text)), {
    main: 'http://one.example/debian',
    security: 'http://one.example/debian-security',
  });
});

test('readMirrors: debian.sources first, sources.list as fallback, VERDANDI_MIRROR overrides', async (t) => {
  const files = (map: Record<string, string>) => async (path: string) => {
    if (path in map) return map[path];
    throw new Error('ENOENT');
  };
  t.is(
    (await readMirrors(files({ '/etc/apt/sources.list.d/debian.sources': DEB822 }), {})).main,
    'http://mirror.example/debian',
  );
  t.is(
    (
      await readMirrors(
        files({ '/etc/apt/sources.list': 'deb http://old.example/debian bookworm main\n' }),
        {},
      )
    ).main,
    'http://old.example/debian',
  );
  t.deepEqual(await readMirrors(files({}), { VERDANDI_MIRROR: 'http://env.example/debian/' }), {
    main: 'http://env.example/debian',
  });
  const err = await t.throwsAsync(readMirrors(files({}), {}), { instanceOf: UserError });
  t.regex(err.message, /no Debian mirror found in \/etc\/apt\/sources\.list\.d\/debian\.sources/);
  t.regex((err as UserError).hint ?? '', /VERDANDI_MIRROR/);
});

test('the guest apt sources point at the same mirror, for bookworm', (t) => {
  const text = guestAptSources({
    main: 'http://m.example/debian',
    security: 'http://m.example/debian-security',
  });
  t.true(text.includes('deb http://m.example/debian bookworm main\n'));
  t.true(text.includes('deb http://m.example/debian bookworm-updates main\n'));
  t.true(text.includes('deb http://m.example/debian-security bookworm-security main\n'));
  t.false(guestAptSources({ main: 'http://m.example/debian' }).includes('security'));
});

test('resolv.conf: the build machine nameservers, or the upstream ones behind a 127.x stub resolver', (t) => {
  t.is(guestResolvConf('search lan\nnameserver 192.0.2.53\n'), 'nameserver 192.0.2.53\n');
  t.is(
    guestResolvConf(
      'nameserver 127.0.0.53\noptions edns0\n',
      'nameserver 198.51.100.1\nnameserver 198.51.100.2\n',
    ),
    'nameserver 198.51.100.1\nnameserver 198.51.100.2\n',
  );
  // IPv6 servers only when there is no IPv4 one: hosts have no IPv6 route.
  t.is(guestResolvConf('nameserver 2001:db8::1\nnameserver 192.0.2.1\n'), 'nameserver 192.0.2.1\n');
  const err = t.throws(() => guestResolvConf('nameserver 127.0.0.53\n', ''), { instanceOf: UserError });
  t.regex(err.message, /no nameserver for test hosts/);
});

test('/etc/hosts has localhost and the host name', (t) => {
  const hosts = guestEtcHosts('web1');
  t.regex(hosts, /^127\.0\.0\.1\tlocalhost$/m);
  t.regex(hosts, /^::1\tlocalhost ip6-localhost ip6-loopback$/m);
  t.regex(hosts, /^127\.0\.1\.1\tweb1$/m);
});

// ---- names, slots, addresses -------------------------------------------------------------------------

test('slot N: guest 10.231.N.2, gateway 10.231.N.1', (t) => {
  t.is(guestAddress(7), '10.231.7.2');
  t.is(gatewayAddress(7), '10.231.7.1');
});

test('namespace and veth names are recognisable as ours and veths fit in 15 characters', (t) => {
  t.is(namespaceName('web1'), 'vd-web1');
  t.is(nameOfNamespace('vd-web1'), 'web1');
  t.is(nameOfNamespace('docker-ns'), undefined);
  for (let slot = 1; slot <= LAST_SLOT; slot++) {
    t.true(hostVethName(slot).length <= MAX_INTERFACE_NAME);
    t.is(slotOfVeth(hostVethName(slot)), slot);
  }
  for (const foreign of ['veth0', 'vdh', 'vdhx', 'vdh12a', 'eth0', 'vdh1234'])
    t.is(slotOfVeth(foreign), undefined);
});

test('host names: lowercase letters, digits and inner dashes', (t) => {
  for (const good of ['web1', 'eng-a', 'a', 'x'.repeat(40)]) t.is(validateHostName(good), good);
  for (const bad of ['', 'Web1', '-a', 'a-', 'a_b', 'a.b', 'x'.repeat(41), '../etc']) {
    const err = t.throws(() => validateHostName(bad), { instanceOf: UserError });
    t.regex(err.message, /invalid test host name/);
  }
});

test('the lowest free slot is picked; none free is a UserError saying what to do', (t) => {
  t.is(pickFreeSlot([]), 1);
  t.is(pickFreeSlot([1, 2, 4]), 3);
  t.is(pickFreeSlot([2, 3], 1, 3), 1);
  const err = t.throws(() => pickFreeSlot([1, 2, 3], 1, 3), { instanceOf: UserError });
  t.regex(err.message, /no free test host slot/);
  t.regex(err.message, /verdandi testhost down/);
  t.is((err as UserError).exitCode, 1);
});

test('the base image directory changes when what goes into the image changes', (t) => {
  t.is(baseImageId('bookworm', ['a', 'b'], 1), baseImageId('bookworm', ['a', 'b'], 1));
  t.not(baseImageId('bookworm', ['a', 'b'], 1), baseImageId('bookworm', ['a', 'b', 'c'], 1));
  t.not(baseImageId('bookworm', ['a'], 1), baseImageId('bookworm', ['a'], 2));
  t.not(baseImageId('bookworm', ['a'], 1), baseImageId('trixie', ['a'], 1));
});

test('the cache dir holds the base image, key, hosts and locks', (t) => {
  const l = layout('/cache');
  t.regex(l.baseDir, /^\/cache\/base-[0-9a-f]{10}$/);
  t.is(l.keyFile, '/cache/id_ed25519');
  t.is(l.hostsDir, '/cache/hosts');
});

// ---- prerequisites ------------------------------------------------------------------------------------

const fine: MachineChecks = { platform: 'linux', isRoot: () => true, hasCommand: async () => true };

test('a machine with everything passes the checks', async (t) => {
  await t.notThrowsAsync(checkMachine(fine));
});

test('not root: a UserError saying to run it as root', async (t) => {
  const err = await t.throwsAsync(checkMachine({ ...fine, isRoot: () => false }), { instanceOf: UserError });
  t.regex(err.message, /test hosts need root/);
  t.regex(err.message, /sudo npx verdandi testhost/);
  t.false(err.message.includes('\n'));
});

test('missing tools: a UserError with the exact apt-get command', async (t) => {
  const missing = new Set(['systemd-nspawn', 'debootstrap', 'ssh', 'ssh-keygen']);
  const err = await t.throwsAsync(checkMachine({ ...fine, hasCommand: async (c) => !missing.has(c) }), {
    instanceOf: UserError,
  });
  t.is(
    err.message,
    'test hosts need debootstrap, systemd-nspawn, ssh, ssh-keygen, not found on this machine: run `apt-get install -y debootstrap systemd-container openssh-client`',
  );
  const onlyNspawn = await t.throwsAsync(
    checkMachine({ ...fine, hasCommand: async (c) => c !== 'systemd-nspawn' }),
  );
  t.regex(onlyNspawn.message, /`apt-get install -y systemd-container`$/);
});

test('not Linux: a UserError pointing at the Vagrant VM', async (t) => {
  const err = await t.throwsAsync(checkMachine({ ...fine, platform: 'darwin' }), { instanceOf: UserError });
  t.regex(err.message, /test hosts need Linux/);
  t.regex(err.message, /inventories\/test\.yml/);
});

// ---- boot command, inventory, /proc parsing --------------------------------------------------------------

test('the boot command is the one of TEST-HOSTS.md', (t) => {
  const { env, args } = nspawnCommand(layout('/c'), 'web1');
  t.deepEqual(env, { SYSTEMD_NSPAWN_UNIFIED_HIERARCHY: '1', SYSTEMD_NSPAWN_API_VFS_WRITABLE: 'yes' });
  t.deepEqual(args, [
    '--keep-unit',
    '--register=no',
    `--directory=${layout('/c').baseDir}`,
    `--overlay=${layout('/c').baseDir}:/c/hosts/web1/upper:/`,
    '--machine=web1',
    '--boot',
    '--capability=all',
    '--system-call-filter=add_key keyctl request_key bpf',
    '--network-namespace-path=/run/netns/vd-web1',
  ]);
});

test('local.yml: a commented hosts: map with address, user root and key, plus groups', (t) => {
  const text = renderLocalInventory([
    { name: 'web2', address: '10.231.2.2', user: 'root', key: '/c/id_ed25519' },
    { name: 'web1', address: '10.231.1.2', user: 'root', key: '/c/id_ed25519' },
  ]);
  t.true(text.startsWith('# Written by `verdandi testhost up/down`'));
  const parsed = yaml.load(text) as { hosts: Record<string, unknown>; groups: unknown };
  t.deepEqual(Object.keys(parsed.hosts), ['web1', 'web2']);
  t.deepEqual(parsed.hosts.web1, { address: '10.231.1.2', user: 'root', key: '/c/id_ed25519' });
  t.deepEqual(parsed.groups, {});
  t.deepEqual((yaml.load(renderLocalInventory([])) as { hosts: unknown }).hosts, {});
});

test('/proc/PID/stat is split after the command name, whatever it holds', (t) => {
  const fields = parseStatFields(
    '42 (we) ird (name) S 1 42 42 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 98765 100 200',
  );
  t.is(fields[0], 'S');
  t.is(fields[1], '1');
  t.is(fields[19], '98765');
});

// ---- command line arguments ---------------------------------------------------------------------------------

test('up: names given, test1 by default, NAME1..NAMEN with --count', (t) => {
  t.deepEqual(namesForUp([]), ['test1']);
  t.deepEqual(namesForUp(['web', 'db']), ['web', 'db']);
  t.deepEqual(namesForUp([], '3'), ['test1', 'test2', 'test3']);
  t.deepEqual(namesForUp(['web'], '2'), ['web1', 'web2']);
});

test('up: a bad --count or name is a UserError', (t) => {
  for (const count of ['0', '-1', 'two', '1.5', '51']) {
    t.regex(
      t.throws(() => namesForUp([], count), { instanceOf: UserError }).message,
      /--count must be a whole number/,
    );
  }
  t.regex(t.throws(() => namesForUp(['a', 'b'], '2'), { instanceOf: UserError }).message, /one base name/);
  t.throws(() => namesForUp(['Bad_Name']), { instanceOf: UserError, message: /invalid test host name/ });
});

test('down: names or --all, one of them', (t) => {
  t.deepEqual(targetsForDown(['web1']), ['web1']);
  t.is(targetsForDown([], true), 'all');
  t.regex(t.throws(() => targetsForDown([]), { instanceOf: UserError }).message, /which test hosts\?/);
  t.regex(t.throws(() => targetsForDown(['a'], true), { instanceOf: UserError }).message, /not both/);
});
