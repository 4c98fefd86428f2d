/**
 * The slow VM tier (`npm run test:vm`, not part of `npm test`): the README's Vagrant steps on a real VM
 * with a real kernel, booted from the box test/vm/box.sh builds from Debian packages. Through the CLI, as
 * a user runs it: `verdandi ping`, `verdandi provision` (user vagrant with sudo) and `verdandi deploy
 * --branch master` of the sample site with an inventory that mirrors inventories/test.yml, then the site
 * answers through nginx.
 *
 * How the VM boots (VERDANDI_VM_PROVIDER):
 *   vagrant  `vagrant up --provider=libvirt` of the project's Vagrantfile (libvirt domain type qemu: TCG),
 *            the VM at 10.231.253.2 on a libvirt network the Vagrantfile defines from VERDANDI_VM_IP, and
 *            libvirt's management network moved to 10.231.252.0/24; `vagrant destroy -f` at the end.
 *   qemu     (default) test/vm/vm.sh: the same box's disk, kernel and initrd under qemu directly, on a tap
 *            interface with 10.231.253.1/24; killed and removed at the end.
 * Every address is in the test hosts' 10.231.0.0/16: 192.168.56.10 is for users' own machines.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { makeSampleRepo } from '../../src/deploy/demo.js';
import { run, runOk } from '../../src/testhost/exec.js';
import { cacheDirFromEnv, VM_MANAGEMENT_SLOT, VM_SLOT } from '../../src/testhost/naming.js';
import { git, httpGet } from '../e2e/deploy-helpers.js';
import { PROJECT_ROOT, runCli, writeInventory } from '../helpers/cli.js';

const provider = process.env.VERDANDI_VM_PROVIDER ?? 'qemu';
const address = `10.231.${VM_SLOT}.2`;
const dir = mkdtempSync(join(tmpdir(), 'vd-vm-'));
const repo = join(dir, 'sample-site');
const MINUTE = 60_000;

const vmScript = (action: string) =>
  runOk(join(PROJECT_ROOT, 'test/vm/vm.sh'), [action], {
    timeoutMs: 20 * MINUTE,
    env: { ...process.env, VERDANDI_VM_SLOT: String(VM_SLOT) },
  });

/** The box of this revision, registered with Vagrant under a name that changes with its contents. */
async function vagrantBox(boxDir: string, env: NodeJS.ProcessEnv): Promise<string> {
  const name = `verdandi/bookworm64-${boxDir.split('-').pop()}`;
  const { stdout } = await runOk('vagrant', ['box', 'list'], { env });
  if (!stdout.split('\n').some((line) => line.startsWith(`${name} `))) {
    await runOk('vagrant', ['box', 'add', '--name', name, join(boxDir, 'verdandi-bookworm.box')], {
      env,
      timeoutMs: 10 * MINUTE,
    });
  }
  return name;
}

async function vagrantEnv(): Promise<NodeJS.ProcessEnv> {
  const boxDir = (
    await runOk(join(PROJECT_ROOT, 'test/vm/box.sh'), [], { timeoutMs: 30 * MINUTE })
  ).stdout.trim();
  const key = (await vmScript('key')).stdout.trim();
  // Boxes in the cache, not in root's home: libvirt's qemu user must read the box's kernel and initrd.
  const home = { ...process.env, VAGRANT_HOME: join(cacheDirFromEnv(), 'vm', 'vagrant.d') };
  return {
    ...home,
    VAGRANT_CWD: PROJECT_ROOT,
    // Vagrant's record of the machine: out of the project, and where the next run finds a machine a
    // killed run left behind (its `vagrant destroy -f` before `up` removes it).
    VAGRANT_DOTFILE_PATH: join(cacheDirFromEnv(), 'vm', 'vagrant-machine'),
    VERDANDI_VM_BOX: await vagrantBox(boxDir, home),
    VERDANDI_VM_IP: address,
    VERDANDI_VM_SSH_KEY: key,
    VERDANDI_VM_LIBVIRT_DRIVER: 'qemu',
    VERDANDI_VM_MANAGEMENT_NETWORK: `10.231.${VM_MANAGEMENT_SLOT}.0/24`,
  };
}

let vagrant: NodeJS.ProcessEnv | undefined;

test.before(async (t) => {
  t.timeout(40 * MINUTE);
  const started = Date.now();
  if (provider === 'vagrant') {
    vagrant = await vagrantEnv();
    // A machine a killed earlier run left behind.
    await run('vagrant', ['destroy', '-f'], { env: vagrant, timeoutMs: 10 * MINUTE });
    await runOk('vagrant', ['up', '--provider=libvirt'], { env: vagrant, timeoutMs: 30 * MINUTE });
  } else if (provider === 'qemu') {
    await vmScript('up');
  } else {
    throw new Error(`VERDANDI_VM_PROVIDER must be vagrant or qemu, not ${provider}`);
  }
  t.log(`VM up (${provider}) at ${address} in ${Math.round((Date.now() - started) / 1000)} s`);
});

test.after.always(async () => {
  if (provider === 'vagrant' && vagrant) {
    await run('vagrant', ['destroy', '-f'], { env: vagrant, timeoutMs: 10 * MINUTE });
  } else if (provider === 'qemu') {
    await vmScript('down');
  }
});

/** inventories/test.yml with the VM's address, the key that logs in as vagrant and the sample repo. */
async function testInventory(): Promise<string> {
  const inv = yaml.load(readFileSync(join(PROJECT_ROOT, 'inventories/test.yml'), 'utf8')) as {
    hosts: Record<string, Record<string, unknown>>;
    groups: { web: { vars: { sites: Array<Record<string, unknown>> } } };
  };
  inv.hosts.vagrant.address = address;
  inv.hosts.vagrant.key = (await vmScript('key')).stdout.trim();
  const site = inv.groups.web.vars.sites[0];
  site.repo = repo;
  site.nginx = { serverNames: [address, '_'] };
  return writeInventory(dir, inv, 'test');
}

test.serial('ping, provision and deploy the sample site on the VM, served through nginx', async (t) => {
  t.timeout(90 * MINUTE);
  await makeSampleRepo(repo);
  // The README's steps deploy `--branch master`: the sample repository has it too.
  await git(repo, 'branch', 'master', 'main');
  const inventory = await testInventory();
  const step = async (args: string[], timeoutMs: number) => {
    const started = Date.now();
    // Under emulation the SSH handshake alone can take longer than the default 10 s.
    const res = await runCli([...args, '--connect-timeout', '120'], { cwd: dir, timeoutMs });
    t.log(`verdandi ${args[0]}: exit ${res.code} in ${Math.round((Date.now() - started) / 1000)} s`);
    t.is(res.code, 0, `verdandi ${args.join(' ')}:\n${res.stdout}\n${res.stderr}`);
    return res;
  };

  const ping = await step(['ping', inventory], 5 * MINUTE);
  t.regex(ping.stdout, /vagrant/);
  await step(['provision', inventory], 60 * MINUTE);
  await step(['deploy', inventory, '--branch', 'master'], 30 * MINUTE);

  const home = await httpGet(`http://${address}/`, 30_000);
  t.is(home.status, 200);
  t.regex(home.body, /Hello from the Vagrant VM/);
  const health = await httpGet(`http://${address}/health`, 30_000);
  t.is(health.status, 200);
  // What is served is the commit of master.
  const commit = await httpGet(`http://${address}/commit`, 30_000);
  t.is(commit.body.trim(), await git(repo, 'rev-parse', 'master'));
});
