/**
 * The slow VM tier (`npm run test:vm`, not part of `npm test`): the README's Vagrant steps on a real VM
 * with a real kernel, booted from the box src/testhost/vm/box.sh builds from Debian packages. Through the CLI, as
 * a user runs it: `verdandi ping`, `verdandi provision` (user vagrant with sudo) and `verdandi deploy
 * --branch master` of the sample site with an inventory that mirrors inventories/test.yml, then the site
 * answers through nginx.
 *
 * How the VM boots (VERDANDI_VM_PROVIDER):
 *   vagrant  `vagrant up --provider=libvirt` of the project's Vagrantfile (libvirt domain type qemu: TCG),
 *            the VM at 10.231.253.2 on libvirt's network verdandi-vm, libvirt's management network in
 *            10.231.252.0/24; libvirtd and virtlogd started (and stopped at the end) where nothing runs
 *            them; `vagrant destroy -f` at the end, whatever failed.
 *   qemu     (default) src/testhost/vm/vm.sh: the same box's disk, kernel and initrd under qemu directly, on a tap
 *            interface with 10.231.253.1/24; killed and removed at the end.
 * Every address is in the test hosts' 10.231.0.0/16: 192.168.56.10 is for users' own machines.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import yaml from 'js-yaml';
import { makeSampleRepo } from '../../src/commands/demo.js';
import { run, runOk } from '../../src/testhost/exec.js';
import { VM_ADDRESS } from '../../src/testhost/naming.js';
import type { ProcessId } from '../../src/testhost/processes.js';
import {
  buildBox,
  ensureLibvirt,
  registerVagrantBox,
  runVmScript,
  stopLibvirt,
  vagrantEnv,
  vmKeyFile,
} from '../../src/testhost/vm.js';
import { git, httpGet } from '../e2e/deploy-helpers.js';
import { PROJECT_ROOT, runCli, writeInventory } from '../helpers/cli.js';

const provider = process.env.VERDANDI_VM_PROVIDER ?? 'qemu';
const address = VM_ADDRESS;
const dir = mkdtempSync(join(tmpdir(), 'vd-vm-'));
const repo = join(dir, 'sample-site');
const MINUTE = 60_000;

let vagrant: NodeJS.ProcessEnv | undefined;
/** The libvirt daemons this run started (none when something already ran them): stopped at the end. */
let daemons: ProcessId[] = [];

test.before(async (t) => {
  t.timeout(60 * MINUTE);
  const started = Date.now();
  if (provider === 'vagrant') {
    const boxDir = await buildBox();
    daemons = await ensureLibvirt();
    vagrant = vagrantEnv({ projectDir: PROJECT_ROOT, boxName: await registerVagrantBox(boxDir) });
    // A machine a killed earlier run left behind.
    await run('vagrant', ['destroy', '-f'], { env: vagrant, timeoutMs: 10 * MINUTE });
    await runOk('vagrant', ['up', '--provider=libvirt'], { env: vagrant, timeoutMs: 40 * MINUTE });
  } else if (provider === 'qemu') {
    await runVmScript('vm.sh', ['up'], { timeoutMs: 40 * MINUTE });
  } else {
    throw new Error(`VERDANDI_VM_PROVIDER must be vagrant or qemu, not ${provider}`);
  }
  t.log(`VM up (${provider}) at ${address} in ${Math.round((Date.now() - started) / 1000)} s`);
});

test.after.always(async (t) => {
  if (provider === 'vagrant') {
    if (vagrant) {
      const destroyed = await run('vagrant', ['destroy', '-f'], { env: vagrant, timeoutMs: 10 * MINUTE });
      t.log(`vagrant destroy -f: exit ${destroyed.code}`);
    }
    await stopLibvirt(daemons);
  } else if (provider === 'qemu') {
    await runVmScript('vm.sh', ['down'], { timeoutMs: 10 * MINUTE });
  }
});

/** inventories/test.yml with the VM's address, the key that logs in as vagrant and the sample repo. */
async function testInventory(): Promise<string> {
  const inv = yaml.load(readFileSync(join(PROJECT_ROOT, 'inventories/test.yml'), 'utf8')) as {
    hosts: Record<string, Record<string, unknown>>;
    groups: { web: { vars: { sites: Array<Record<string, unknown>> } } };
  };
  inv.hosts.vagrant.address = address;
  inv.hosts.vagrant.key = vmKeyFile();
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
