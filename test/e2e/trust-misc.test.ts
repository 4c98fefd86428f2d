/**
 * A role written without `vars` (`defineRole({ name, tasks })`) on a real test host: `check` passes and
 * `provision` converges the host (it crashed on the missing schema, exit 1 "internal error"); a second
 * provision changes nothing. The task with `ignoreErrors` that fails on the host is counted as ignored
 * and the run exits 0.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { removeProject, runCli, writeInventory } from '../helpers/cli.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tm-novars';
const hosts = useTestHosts(test, [HOST]);

const CONTENT = 'written by a role without vars\n';
const ROLE = `import { command, copy, defineRole } from 'verdandi';

export default defineRole({
  name: 'bare',
  tasks: (_vars, host) => [
    copy({ path: '/etc/bare.conf', content: ${JSON.stringify(CONTENT)}, mode: '0640' }),
    command({ name: 'optional probe', argv: ['sh', '-c', 'test -e /nonexistent/thing'], ignoreErrors: true }),
    copy({ path: '/etc/bare-host', content: host.name + '\\n' }),
  ],
});
`;

let dir = '';
test.after.always(async () => {
  if (dir) removeProject(dir);
});

test('a role without vars: check passes, provision converges a real host, ignored failure exits 0', async (t) => {
  t.timeout(10 * 60_000);
  dir = await mkdtemp(join(tmpdir(), 'vd-tm-novars-'));
  await mkdir(join(dir, 'roles', 'bare'), { recursive: true });
  await writeFile(join(dir, 'roles', 'bare', 'index.ts'), ROLE);
  const h = hosts.get(HOST);
  const inventory = writeInventory(dir, {
    hosts: { [HOST]: { address: h.address, user: h.user, key: h.key } },
    groups: { plain: { hosts: [HOST], roles: ['bare'] } },
  });
  const cli = (...args: string[]) => runCli([...args], { cwd: dir, timeoutMs: 5 * 60_000 });

  const checked = await cli('check', inventory);
  t.is(checked.code, 0, checked.stdout + checked.stderr);
  t.regex(checked.stdout, /checked 1 host, 1 role and play, 3 tasks in \d+ ms: ok/);

  const first = await cli('provision', inventory, '--host-key-checking=off');
  t.is(first.code, 0, first.stdout + first.stderr);
  t.notRegex(first.stdout + first.stderr, /internal error/);
  t.regex(first.stdout, /failed +tm-novars +bare › optional probe \(step failed; ignored: ignoreErrors\)/);
  t.regex(first.stdout, /tm-novars: ignored failures: bare › optional probe/);
  const state = await hosts.ssh(
    HOST,
    'sha256sum /etc/bare.conf; stat -c %a /etc/bare.conf; cat /etc/bare-host',
  );
  t.is(state.code, 0, state.stderr);
  const [sum, mode, name] = state.stdout.trim().split('\n');
  t.is(sum.split(' ')[0], createHash('sha256').update(CONTENT).digest('hex'));
  t.is(mode, '640');
  t.is(name, HOST);

  const again = await cli('provision', inventory, '--host-key-checking=off', '--json');
  t.is(again.code, 0, again.stderr);
  const doc = JSON.parse(again.stdout) as {
    hosts: Record<string, { changed: number; failed: number; ignored: number }>;
  };
  t.like(doc.hosts[HOST], { changed: 0, failed: 0, ignored: 1 });
});
