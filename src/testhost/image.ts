/**
 * The two things every test host shares, made once and kept in the cache dir: the harness's SSH key and
 * the Debian base image (debootstrap, ~2.5 minutes, ~1 GB). Both are built under a lock, so parallel
 * test workers that all need them wait for one build instead of racing.
 */
import { access, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';
import { run, runOk } from './exec.js';
import type { Mirrors } from './guest-config.js';
import { withLock } from './lock.js';
import { BASE_PACKAGES, type Layout, SUITE } from './naming.js';
import type { Progress } from './progress.js';

/** Written last into a finished image: a directory without it is an interrupted build. */
const COMPLETE_MARKER = '.verdandi-base-complete';

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

export async function ensureKey(l: Layout): Promise<string> {
  if ((await exists(l.keyFile)) && (await exists(`${l.keyFile}.pub`))) return l.keyFile;
  await mkdir(l.cacheDir, { recursive: true });
  return withLock(join(l.locksDir, 'key'), async () => {
    if ((await exists(l.keyFile)) && (await exists(`${l.keyFile}.pub`))) return l.keyFile;
    const temp = `${l.keyFile}.tmp-${process.pid}`;
    await rm(temp, { force: true });
    await rm(`${temp}.pub`, { force: true });
    await runOk('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'verdandi-testhost', '-f', temp]);
    // Public key first: a private key without its .pub counts as missing.
    await rename(`${temp}.pub`, `${l.keyFile}.pub`);
    await rename(temp, l.keyFile);
    return l.keyFile;
  });
}

export async function publicKey(l: Layout): Promise<string> {
  return (await readFile(`${l.keyFile}.pub`, 'utf8')).trim();
}

export async function baseImageReady(l: Layout): Promise<boolean> {
  return exists(join(l.baseDir, COMPLETE_MARKER));
}

/** Builds the base image unless a complete one is cached. */
export async function ensureBaseImage(l: Layout, mirrors: Mirrors, progress: Progress): Promise<void> {
  if (await baseImageReady(l)) return;
  await mkdir(l.cacheDir, { recursive: true });
  await withLock(
    join(l.locksDir, 'base'),
    async () => {
      if (await baseImageReady(l)) return; // another process built it while we waited
      const started = Date.now();
      progress.start(`building the Debian ${SUITE} base image in ${l.baseDir} (once, about 3 minutes)`);
      try {
        await buildBaseImage(l, mirrors);
      } catch (err) {
        progress.fail('building the base image');
        throw err;
      }
      progress.succeed(`base image built in ${Math.round((Date.now() - started) / 1000)} s`);
    },
    // Long enough for a whole build by another process.
    {
      timeoutMs: 20 * 60_000,
      onWait: () => progress.info('waiting for another process building the base image'),
    },
  );
}

async function buildBaseImage(l: Layout, mirrors: Mirrors): Promise<void> {
  // Whatever is there is an interrupted build (we hold the lock): start over.
  await rm(l.baseBuildDir, { recursive: true, force: true });
  await rm(l.baseDir, { recursive: true, force: true });
  const log = await open(l.baseBuildLog, 'w');
  try {
    const args = [
      '--variant=minbase',
      `--include=${BASE_PACKAGES.join(',')}`,
      SUITE,
      l.baseBuildDir,
      mirrors.main,
    ];
    const result = await run('debootstrap', args, { timeoutMs: 30 * 60_000 });
    await log.writeFile(`$ debootstrap ${args.join(' ')}\n${result.stdout}\n${result.stderr}\n`);
    if (result.code !== 0) {
      const tail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-3).join(' | ');
      throw new UserError(
        `debootstrap of the test host base image failed (exit ${result.code}): ${tail}`,
        1,
        `full log: ${l.baseBuildLog}; check that ${mirrors.main} is reachable (or set VERDANDI_MIRROR)`,
      );
    }
  } finally {
    await log.close();
  }
  await customizeBaseImage(l.baseBuildDir);
  await writeFile(join(l.baseBuildDir, COMPLETE_MARKER), `${new Date().toISOString()}\n`);
  await rename(l.baseBuildDir, l.baseDir);
}

/** What every host needs and debootstrap does not do. Per-host files are written into each overlay. */
async function customizeBaseImage(root: string): Promise<void> {
  // minbase has no DHCP client; the harness configures eth0 from outside, so nothing must touch it.
  // (`networking` comes with ifupdown, which minbase lacks: "no such unit" is fine.)
  await run('chroot', [root, 'systemctl', 'disable', 'networking']);
  // debootstrap copies the build machine's name and resolver; each host gets its own in its overlay.
  await writeFile(join(root, 'etc/hostname'), 'localhost\n');
  // An empty machine-id: each boot gets its own, instead of every host sharing the image's.
  await writeFile(join(root, 'etc/machine-id'), '');
}
