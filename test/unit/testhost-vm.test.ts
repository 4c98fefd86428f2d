/**
 * The VM's pieces that need no VM: the box's Vagrant name, the environment the Vagrantfile gets, the
 * libvirt daemons started only where nothing answers, `--vm`'s arguments, the VM's tools, and the
 * scripts shipping with the package. The VM itself boots in the slow VM tier (test/vm/).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { checkVmArguments } from '../../src/testhost/cli.js';
import { checkMachine, type MachineChecks, VM_TOOLS } from '../../src/testhost/preflight.js';
import {
  boxListed,
  ensureLibvirt,
  kvmUsable,
  LIBVIRT_DAEMONS,
  vagrantBoxEnv,
  vagrantBoxName,
  vagrantEnv,
  vagrantEnvWords,
  vmKeyFile,
  vmRunDir,
  vmScriptPath,
} from '../../src/testhost/vm.js';
import { UserError } from '../../src/util/errors.js';
import { PROJECT_ROOT } from '../helpers/cli.js';

test('the Vagrant box is named after the box revision', (t) => {
  t.is(vagrantBoxName('/cache/vm/box-2'), 'verdandi/bookworm64-2');
  t.is(vagrantBoxName('/cache/vm/box-13/'), 'verdandi/bookworm64-13');
  t.throws(() => vagrantBoxName('/cache/vm/box.build'), { message: /not a box directory/ });
});

test('the VM keeps its key and its running files under the cache, where box.sh and vm.sh put them', (t) => {
  const env = { VERDANDI_CACHE: '/cache' };
  t.is(vmKeyFile(env), '/cache/vm/vagrant_ed25519');
  t.is(vmRunDir(env), '/cache/vm/run-253');
  for (const script of ['box.sh', 'vm.sh'] as const) {
    const text = readFileSync(vmScriptPath(script, PROJECT_ROOT), 'utf8');
    t.true(text.includes('key="$cache/vm/vagrant_ed25519"'), script);
  }
  t.true(readFileSync(vmScriptPath('vm.sh', PROJECT_ROOT), 'utf8').includes('run_dir="$cache/vm/run-$slot"'));
});

test('boxListed finds the box by its whole name in `vagrant box list`', (t) => {
  const list = 'debian/bookworm64 (libvirt, 12.20240503.1)\nverdandi/bookworm64-2 (libvirt, 0)\n';
  t.true(boxListed(list, 'verdandi/bookworm64-2'));
  t.false(boxListed(list, 'verdandi/bookworm64-1'));
  // A prefix of another box's name is not that box.
  t.false(boxListed('verdandi/bookworm64-21 (libvirt, 0)\n', 'verdandi/bookworm64-2'));
  t.false(
    boxListed('There are no installed boxes! Use `vagrant box add` to add some.\n', 'verdandi/bookworm64-2'),
  );
});

test('vagrantEnv: the VM in 10.231.0.0/16 under TCG, Vagrant files in the cache, never 192.168.56.10', (t) => {
  const env = vagrantEnv({
    boxName: 'verdandi/bookworm64-2',
    projectDir: '/src/project',
    env: { VERDANDI_CACHE: '/cache', PATH: '/usr/bin' },
  });
  t.like(env, {
    PATH: '/usr/bin',
    VAGRANT_HOME: '/cache/vm/vagrant.d',
    VAGRANT_CWD: '/src/project',
    VAGRANT_DOTFILE_PATH: '/cache/vm/vagrant-machine',
    VERDANDI_VM_BOX: 'verdandi/bookworm64-2',
    VERDANDI_VM_IP: '10.231.253.2',
    VERDANDI_VM_SSH_KEY: '/cache/vm/vagrant_ed25519',
    VERDANDI_VM_LIBVIRT_DRIVER: 'qemu',
    VERDANDI_VM_MANAGEMENT_NETWORK: '10.231.252.0/24',
  });
  t.false(JSON.stringify(env).includes('192.168.56.10'));
  // Without a project folder, vagrant reads the working directory's Vagrantfile.
  t.false('VAGRANT_CWD' in vagrantEnv({ boxName: 'b', env: {} }));
});

test('vagrantBoxEnv: what a user needs for the box, the Vagrantfile keeping its own address', (t) => {
  const env = { VERDANDI_CACHE: '/cache', PATH: '/usr/bin' };
  const tcg = vagrantBoxEnv({ boxName: 'verdandi/bookworm64-2', kvm: false, env });
  t.deepEqual(vagrantEnvWords(tcg, env), [
    'VAGRANT_HOME=/cache/vm/vagrant.d',
    'VERDANDI_VM_BOX=verdandi/bookworm64-2',
    'VERDANDI_VM_SSH_KEY=/cache/vm/vagrant_ed25519',
    'VERDANDI_VM_LIBVIRT_DRIVER=qemu',
  ]);
  // With KVM the Vagrantfile's default domain type stays.
  const kvm = vagrantBoxEnv({ boxName: 'verdandi/bookworm64-2', kvm: true, env });
  t.false('VERDANDI_VM_LIBVIRT_DRIVER' in kvm);
  t.false('VERDANDI_VM_IP' in kvm);
});

test('vagrantEnvWords lists the Vagrant variables that differ from the environment, nothing else', (t) => {
  const base = { VERDANDI_CACHE: '/cache', PATH: '/usr/bin', VERDANDI_VM_LIBVIRT_DRIVER: 'qemu' };
  const words = vagrantEnvWords(vagrantEnv({ boxName: 'verdandi/bookworm64-2', env: base }), base);
  t.deepEqual(words, [
    'VAGRANT_HOME=/cache/vm/vagrant.d',
    'VERDANDI_VM_BOX=verdandi/bookworm64-2',
    'VERDANDI_VM_SSH_KEY=/cache/vm/vagrant_ed25519',
    'VAGRANT_DOTFILE_PATH=/cache/vm/vagrant-machine',
    'VERDANDI_VM_IP=10.231.253.2',
    'VERDANDI_VM_MANAGEMENT_NETWORK=10.231.252.0/24',
  ]);
});

test('KVM is usable only with /dev/kvm and a CPU offering vmx or svm', (t) => {
  const flags = (list: string) => `processor\t: 0\nflags\t\t: fpu vme ${list} sse2\nbogomips\t: 4000\n`;
  t.true(kvmUsable(flags('vmx'), true));
  t.true(kvmUsable(flags('svm'), true));
  t.false(kvmUsable(flags('hypervisor'), true));
  t.false(kvmUsable(flags('vmx'), false));
  // A word that only contains the letters is not the flag.
  t.false(kvmUsable(flags('vmxe'), true));
});

/** A fake machine: sockets that answer once their daemon was started (or from the beginning). */
function fakeLibvirt(running: string[] = []) {
  const started: string[] = [];
  const up = new Set(running);
  return {
    started,
    deps: {
      answers: async (socket: string) =>
        LIBVIRT_DAEMONS.some((d) => d.socket === socket && up.has(d.command)),
      start: async (command: string) => {
        started.push(command);
        up.add(command);
      },
      pidOf: async (daemon: { command: string }) => ({
        pid: daemon.command === 'virtlogd' ? 10 : 11,
        start: '5',
      }),
    },
  };
}

test('ensureLibvirt starts virtlogd, then libvirtd, when nothing answers, and returns them to stop', async (t) => {
  const fake = fakeLibvirt();
  const ids = await ensureLibvirt(fake.deps);
  t.deepEqual(fake.started, ['virtlogd', 'libvirtd']);
  t.deepEqual(ids, [
    { pid: 10, start: '5' },
    { pid: 11, start: '5' },
  ]);
});

test('ensureLibvirt leaves daemons that already answer alone (systemd or a user runs them)', async (t) => {
  const all = fakeLibvirt(['virtlogd', 'libvirtd']);
  t.deepEqual(await ensureLibvirt(all.deps), []);
  t.deepEqual(all.started, []);
  const onlyLog = fakeLibvirt(['virtlogd']);
  t.deepEqual(await ensureLibvirt(onlyLog.deps), [{ pid: 11, start: '5' }]);
  t.deepEqual(onlyLog.started, ['libvirtd']);
});

test('ensureLibvirt: a daemon that never answers is a UserError naming its socket', async (t) => {
  const err = await t.throwsAsync(
    ensureLibvirt({ answers: async () => false, start: async () => {}, timeoutMs: 300 }),
    { instanceOf: UserError },
  );
  t.regex(err.message, /^virtlogd started but nothing answers on \/run\/libvirt\/virtlogd-sock/);
  t.regex(err.hint ?? '', /virtlogd -d/);
});

test('ensureLibvirt: virtlogd it started is stopped again when libvirtd does not come up', async (t) => {
  const up = new Set<string>();
  const stopped: unknown[] = [];
  const err = await t.throwsAsync(
    ensureLibvirt({
      // virtlogd answers once started; libvirtd never does.
      answers: async (socket) => socket.endsWith('virtlogd-sock') && up.has('virtlogd'),
      start: async (command) => {
        up.add(command);
      },
      pidOf: async () => ({ pid: 10, start: '5' }),
      stop: async (ids) => {
        stopped.push(...ids);
      },
      timeoutMs: 300,
    }),
    { instanceOf: UserError },
  );
  t.regex(err.message, /^libvirtd started but nothing answers on \/run\/libvirt\/libvirt-sock/);
  t.deepEqual([...up], ['virtlogd', 'libvirtd']);
  t.deepEqual(stopped, [{ pid: 10, start: '5' }]);
});

test('--vm takes no host names, --count or --all', (t) => {
  t.notThrows(() => checkVmArguments([], {}));
  const names = t.throws(() => checkVmArguments(['web1'], {}), { instanceOf: UserError });
  t.is(
    names.message,
    '--vm is the one VM at 10.231.253.2: drop host names (web1), or drop --vm for systemd-nspawn test hosts',
  );
  t.regex(t.throws(() => checkVmArguments([], { count: '2' })).message, /drop --count,/);
  t.regex(t.throws(() => checkVmArguments(['a'], { all: true })).message, /drop host names \(a\) and --all/);
});

test('the VM needs qemu, qemu-img, mkfs.ext4 and dnsmasq on top of the test hosts tools', async (t) => {
  const fine: MachineChecks = { platform: 'linux', isRoot: () => true, hasCommand: async () => true };
  await t.notThrowsAsync(checkMachine(fine, VM_TOOLS));
  const vmOnly = new Set(['qemu-system-x86_64', 'qemu-img', 'dnsmasq', 'mkfs.ext4']);
  const err = await t.throwsAsync(
    checkMachine({ ...fine, hasCommand: async (c) => !vmOnly.has(c) }, VM_TOOLS),
  );
  t.regex(err.message, /`apt-get install -y e2fsprogs qemu-utils qemu-system-x86 dnsmasq-base`$/);
  // The test hosts alone do not ask for them.
  await t.notThrowsAsync(checkMachine({ ...fine, hasCommand: async (c) => !vmOnly.has(c) }));
});

test('the VM scripts are executable and ship with the package', (t) => {
  const files: string[] = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')).files;
  for (const script of ['box.sh', 'vm.sh'] as const) {
    const path = vmScriptPath(script, PROJECT_ROOT);
    t.notThrows(() => accessSync(path, constants.X_OK), path);
    // They live under src/, which the package ships whole (package-install e2e checks the tarball).
    t.true(path.startsWith(join(PROJECT_ROOT, 'src', 'testhost', 'vm')), path);
    t.true(files.includes('src'), 'package.json files lists src');
  }
});
