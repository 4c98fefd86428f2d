/**
 * File writes an adversary cannot bend, on a real host:
 *
 * - a copy or template onto a symbolic link replaces the link with a file owned by root, mode 0644 (the
 *   defaults), never taking the owner or mode of the file the link points to, which stays untouched;
 * - in a world-writable directory without the sticky bit, a local user racing to swap the temporary
 *   file during a slow `validate` gets nothing installed: she cannot touch the file (it lives in a
 *   0700 directory), and renaming that directory makes the write refuse;
 * - `..` in a task path and `/.` as absent's path are refused at plan time (exit 1, nothing changed).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { runCli, writeInventory } from '../helpers/cli.js';
import { sha256On } from '../helpers/faults.js';
import { useTestHosts } from '../helpers/testhosts.js';

const HOST = 'tf-files';
const hosts = useTestHosts(test, [HOST]);
const dir = mkdtempSync(join(tmpdir(), 'vd-trust-files-'));

let inventory = '';
let sites = 0;

function playbook(tasks: string): string {
  const name = `site-${++sites}.ts`;
  writeFileSync(
    join(dir, name),
    `import { definePlaybook, absent, copy, directory, template } from 'verdandi';
export default definePlaybook({ plays: [{ hosts: 'all', tasks: () => [
${tasks}
] }] });
`,
  );
  return name;
}

const run = (site: string) => runCli(['run', inventory, site, '--host-key-checking=off'], { cwd: dir });

async function sh(command: string): Promise<string> {
  const res = await hosts.ssh(HOST, command);
  if (res.code !== 0) throw new Error(`${command}: exit ${res.code}: ${res.stderr}`);
  return res.stdout;
}

let ready: Promise<void> | undefined;
function setup(): Promise<void> {
  ready ??= (async () => {
    inventory = writeInventory(dir, { hosts: { [HOST]: hosts.get(HOST) } });
    await sh('id mallory >/dev/null 2>&1 || useradd -M -s /bin/sh mallory');
  })();
  return ready;
}

test.serial(
  'copy and template onto a symbolic link replace the link; the link target lends no owner or mode',
  async (t) => {
    await setup();
    await sh(
      'mkdir -p /srv/tff && printf theirs > /srv/tff/target && chown nobody:nogroup /srv/tff/target && ' +
        'chmod 0600 /srv/tff/target && ln -sfn /srv/tff/target /srv/tff/copied.conf && ln -sfn /srv/tff/target /srv/tff/templated.conf',
    );
    const src = join(dir, 'app.conf.hbs');
    writeFileSync(src, 'name = {{name}}\n');
    const site = playbook(`copy({ path: '/srv/tff/copied.conf', content: 'mine\\n' }),
  template({ path: '/srv/tff/templated.conf', src: ${JSON.stringify(src)}, vars: { name: 'app' } }),`);
    const res = await run(site);
    t.is(res.code, 0, res.stdout + res.stderr);
    t.regex(
      res.stdout,
      /changed +tf-files {2}play 1 › copy \/srv\/tff\/copied\.conf \(\/srv\/tff\/copied\.conf is a symbolic link \(→ \/srv\/tff\/target\), replaced by a file\)/,
    );
    t.regex(res.stdout, /changed +tf-files {2}play 1 › template \/srv\/tff\/templated\.conf/);
    t.is(
      await sh("stat -c '%n %F %U:%G %a' /srv/tff/copied.conf /srv/tff/templated.conf /srv/tff/target"),
      '/srv/tff/copied.conf regular file root:root 644\n' +
        '/srv/tff/templated.conf regular file root:root 644\n' +
        '/srv/tff/target regular file nobody:nogroup 600\n',
    );
    t.is(
      await sh('cat /srv/tff/copied.conf /srv/tff/templated.conf /srv/tff/target'),
      'mine\nname = app\ntheirs',
    );
    const again = await run(site);
    t.is(again.code, 0);
    t.notRegex(again.stdout, /^changed/m);
  },
);

/**
 * Mallory, a local user, watches the world-writable /srv/pub for Verdandi's temporary entries. A
 * temporary file she replaces with her own (`ok evil`, which passes the validate); into a temporary
 * directory she tries to write, and with `rename` she moves it away and puts her own in its place.
 * `validate` waits until she has made her move.
 */
const ATTACK = `
mode=$1
while [ ! -e /srv/tf-attack/stop ]; do
  for p in /srv/pub/.verdandi-*; do
    case "$p" in *'*'|*.hers) continue ;; esac
    if [ -f "$p" ] && [ ! -e /srv/tf-attack/done ]; then
      rm -f "$p" && printf 'ok evil\\n' > "$p" && echo "swapped the file $p"
      touch /srv/tf-attack/done
    elif [ -d "$p" ] && [ ! -e /srv/tf-attack/done ]; then
      if printf 'ok evil\\n' > "$p/app.conf"; then echo "wrote into $p"; fi
      if [ "$mode" = rename ] && mv "$p" "$p.hers" && mkdir "$p" && printf 'ok evil\\n' > "$p/app.conf"; then
        echo "renamed $p"
      fi
      touch /srv/tf-attack/done
    fi
  done
  sleep 0.02
done
`;

const OLD = 'ok old\n';
const MINE = 'ok mine\n';
const EVIL = 'ok evil\n';

/** Runs a copy into /srv/pub (0777, no sticky bit) while Mallory attacks; returns the run's result. */
async function copyUnderAttack(mode: 'swap' | 'rename') {
  await setup();
  await sh(
    // Her own directory (not /tmp: root may not append to her files in a sticky directory).
    'rm -rf /srv/pub /srv/tf-attack && mkdir -p /srv/pub /srv/tf-attack && chown mallory /srv/tf-attack && ' +
      'chmod 0777 /srv/pub && ' +
      `printf '${OLD.trim()}\\n' > /srv/pub/app.conf && chmod 0644 /srv/pub/app.conf`,
  );
  await hosts.ssh(HOST, 'cat > /srv/tf-attack/attack.sh', { input: ATTACK });
  await sh(
    `setsid runuser -u mallory -- sh /srv/tf-attack/attack.sh ${mode} >> /srv/tf-attack/log 2>&1 < /dev/null & echo $! > /srv/tf-attack/pid`,
  );
  const validate =
    "i=0; while [ ! -e /srv/tf-attack/done ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; grep -q '^ok' %s";
  const site = playbook(
    `copy({ path: '/srv/pub/app.conf', content: ${JSON.stringify(MINE)}, validate: ${JSON.stringify(validate)} }),`,
  );
  try {
    return { res: await run(site), site };
  } finally {
    await sh('touch /srv/tf-attack/stop; kill "$(cat /srv/tf-attack/pid)" 2>/dev/null; true');
  }
}

const sha256 = async (text: string) =>
  (await import('node:crypto')).createHash('sha256').update(text).digest('hex');

test.serial(
  'a local user cannot swap the temporary file during validate: it lives in a 0700 directory',
  async (t) => {
    const { res } = await copyUnderAttack('swap');
    const log = await sh('cat /srv/tf-attack/log');
    t.regex(log, /Permission denied/, `she tried and was refused:\n${log}`);
    t.notRegex(log, /swapped the file|wrote into/);
    t.is(res.code, 0, res.stdout + res.stderr);
    t.is(await sha256On(hosts, HOST, '/srv/pub/app.conf'), await sha256(MINE), 'what was sent is installed');
    t.is(await sh("stat -c '%U:%G %a' /srv/pub/app.conf"), 'root:root 644\n');
    t.is(await sh('find /srv/pub -mindepth 1'), '/srv/pub/app.conf\n', 'no temporary entry left');
  },
);

test.serial(
  'a temporary directory renamed and replaced during validate: nothing installed, the run says why',
  async (t) => {
    const { res, site } = await copyUnderAttack('rename');
    const log = await sh('cat /srv/tf-attack/log');
    t.regex(log, /renamed \/srv\/pub\/\.verdandi-/, log);
    t.is(res.code, 2, res.stdout + res.stderr);
    t.regex(res.stdout, /failed +tf-files {2}play 1 › copy \/srv\/pub\/app\.conf/);
    t.regex(
      res.stdout + res.stderr,
      /the temporary directory \/srv\/pub\/\.verdandi-\w+ was replaced by another user of the host while validating; nothing installed/,
    );
    t.is(await sha256On(hosts, HOST, '/srv/pub/app.conf'), await sha256(OLD), 'the old file stays');
    // Her directory is hers; ours (renamed by her) is left empty: the content never stays behind.
    t.is(await sh("find /srv/pub -path '*.hers/*'"), '');
    t.not(await sha256On(hosts, HOST, '/srv/pub/app.conf'), await sha256(EVIL));

    await sh('rm -rf /srv/pub/.verdandi-*');
    const calm = await run(site);
    t.is(calm.code, 0, calm.stdout + calm.stderr);
    t.is(await sha256On(hosts, HOST, '/srv/pub/app.conf'), await sha256(MINE));
  },
);

test.serial('.. in a task path and "/." as the path of absent are refused at plan time', async (t) => {
  await setup();
  await sh('mkdir -p /srv/tff/sub && rm -rf /srv/tff/b');
  const cases: Array<[string, RegExp]> = [
    [
      "absent({ path: '/srv/tff/sub/..' }),",
      /absent \/srv\/tff\/sub\/\.\.: path must not contain \.\. segments, got "\/srv\/tff\/sub\/\.\." \(at site-\d+\.ts:3\b/,
    ],
    ["absent({ path: '/.' }),", /absent \/\.: refusing to remove \/ \(at site-\d+\.ts:3\b/],
    [
      "directory({ path: '/srv/tff/sub/../b' }),",
      /directory \/srv\/tff\/sub\/\.\.\/b: path must not contain \.\. segments/,
    ],
  ];
  for (const [task, message] of cases) {
    const res = await run(playbook(task));
    t.is(res.code, 1, res.stdout + res.stderr);
    t.regex(res.stderr, message);
    t.notRegex(res.stdout + res.stderr, /\n\s+at .+:\d+:\d+\)/, 'no stack trace');
  }
  t.is(await sh('test -d /srv/tff/sub && test ! -e /srv/tff/b && echo intact'), 'intact\n');
});
